// The product's name and accent colour (public/oauth/product.json) and the words in the browser's
// language (words.js), for the callback page and the popup's placeholder. Elements with
// data-i18n="<key>" get that key's words; `self.tiktokConnectPage` settles with what callback.js needs.
;(() => {
  'use strict'

  const WORDS = self.tiktokConnectWords
  const PRODUCT_URL = '/oauth/product.json'

  /** The first of the browser's languages with a dictionary: by full tag, then by language alone. */
  const language = () => {
    const known = Object.keys(WORDS)
    for (const tag of navigator.languages?.length ? navigator.languages : [navigator.language || 'en']) {
      const wanted = String(tag).toLowerCase()
      const found = known.find((k) => k.toLowerCase() === wanted) || known.find((k) => k.toLowerCase() === wanted.split('-')[0])
      if (found) return found
    }
    return 'en'
  }

  /** Relative luminance (WCAG 2) of `#rrggbb`. */
  const luminance = (hex) =>
    [1, 3, 5]
      .map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
      .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0)

  /** The accent for buttons, and the text colour that reads on it (white, or the page's near-black). */
  const applyAccent = (accent) => {
    if (typeof accent !== 'string' || !/^#[0-9a-f]{6}$/i.test(accent)) return
    const l = luminance(accent)
    const root = document.documentElement.style
    root.setProperty('--accent', accent)
    root.setProperty('--on-accent', 1.05 / (l + 0.05) >= 4.5 ? '#fff' : '#16181d')
  }

  const settings = fetch(PRODUCT_URL, { cache: 'no-store' })
    .then((response) => (response.ok ? response.json() : {}))
    .catch(() => ({}))

  self.tiktokConnectPage = settings.then((product) => {
    const lang = language()
    const words = { ...WORDS.en, ...WORDS[lang] }
    const name = typeof product.name === 'string' ? product.name.trim().slice(0, 80) : ''
    /** The words for `key` with its {values} filled in; the `_named` variant when the product has a name. */
    const t = (key, values = {}) =>
      ((name && words[`${key}_named`]) || words[key] || key).replace(/\{(\w+)\}/g, (all, k) => (k === 'product' ? name : (values[k] ?? all)))
    const has = (key) => key in words
    document.documentElement.lang = lang
    applyAccent(product.accent)
    for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n)
    return { lang, name, t, has }
  })
})()
