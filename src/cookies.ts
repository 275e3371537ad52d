/**
 * The browser-binding cookie. `__Host-`: only this exact host can set it (Secure, Path=/, no
 * Domain), so a sibling subdomain cannot plant its own binding in the victim's browser (cookie
 * tossing, login CSRF); look-alike names that escape those rules are refused by `readCookie`.
 */
export const BINDING_COOKIE = '__Host-tiktok_oauth_binding'

/**
 * The values of the cookie named exactly `name` in a Cookie header, read as RFC 6265 §5.2 does:
 * pairs split on `;`, only SP and HTAB stripped around name and value, names compared byte for byte.
 *
 * `lookalikes` counts pairs whose name is not `name` but becomes it once everything outside printable
 * ASCII is removed and case is folded: a browser applies the `__Host-` rules only to names that
 * begin with `__Host-`, so `"\u00A0__Host-x"` or `"__host-x"` can be set from a sibling subdomain.
 * `String.prototype.trim()` would strip U+00A0 and turn such a cookie into the real one.
 */
export function readCookie(header: string | undefined, name: string): { values: string[]; lookalikes: number } {
  const values: string[] = []
  let lookalikes = 0
  if (!header) return { values, lookalikes }
  const folded = name.toLowerCase()
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    // A pair without `=` is a nameless cookie (RFC 6265bis): its text is a value, never a name.
    if (eq === -1) continue
    const key = stripSpaces(pair.slice(0, eq))
    if (key === name) values.push(stripSpaces(pair.slice(eq + 1)))
    else if (key.replace(/[^\x21-\x7e]/g, '').toLowerCase() === folded) lookalikes++
  }
  return { values, lookalikes }
}

/** Strips SP and HTAB only (RFC 6265's WSP), unlike `trim()`, which strips Unicode spaces too. */
const stripSpaces = (text: string): string => text.replace(/^[ \t]+|[ \t]+$/g, '')
