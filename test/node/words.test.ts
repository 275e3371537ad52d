// The callback page's dictionaries (public/oauth/words.js): a language added there is complete.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../../scripts/stack.ts'

const sandbox: { self: { tiktokConnectWords?: Record<string, Record<string, string>> } } = { self: {} }
runInNewContext(readFileSync(join(ROOT, 'public/oauth/words.js'), 'utf8'), sandbox)
const WORDS = sandbox.self.tiktokConnectWords!
const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()

describe('the callback page’s words', () => {
  it('ships English and Russian', () => {
    expect(Object.keys(WORDS)).toEqual(expect.arrayContaining(['en', 'ru']))
  })

  it.each(Object.keys(WORDS).filter((lang) => lang !== 'en'))(
    '%s has every English key, with the same {values}, and no other key but error messages',
    (lang) => {
      const words = WORDS[lang]!
      for (const [key, english] of Object.entries(WORDS.en!)) {
        expect(words[key], `${lang}: ${key}`).toEqual(expect.any(String))
        expect(placeholders(words[key]!), `${lang}: ${key}`).toEqual(placeholders(english))
      }
      // A language may word an API error the English page leaves to the API's own sentence.
      expect(Object.keys(words).filter((key) => !(key in WORDS.en!) && !/^message\.[a-z_]+$/.test(key))).toEqual([])
    },
  )

  it('names the product only through a `_named` variant of a key that exists without it', () => {
    for (const [lang, words] of Object.entries(WORDS)) {
      for (const [key, text] of Object.entries(words)) {
        if (key.endsWith('_named')) expect(words[key.slice(0, -'_named'.length)], `${lang}: ${key}`).toEqual(expect.any(String))
        expect(text.includes('{product}'), `${lang}: ${key}`).toBe(key.endsWith('_named'))
      }
    }
  })
})
