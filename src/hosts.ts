/**
 * Whether a URL's hostname (as `new URL(...).hostname` gives it: IPv4 dotted and normalised, IPv6
 * in brackets) names this machine or a network that is not the public internet. `loopback` is this
 * machine; `private` is anything else off the public internet: private, shared (CGNAT), link-local
 * (cloud metadata at 169.254.169.254), unique-local, multicast and reserved addresses, and the
 * names `*.local` and `*.internal` (metadata.google.internal).
 */
export function isPrivateHost(hostname: string): 'loopback' | 'private' | undefined {
  const name = hostname.toLowerCase().replace(/\.+$/, '')
  if (name === 'localhost' || name.endsWith('.localhost')) return 'loopback'
  if (name.startsWith('[')) return ipv6Class(name.slice(1, -1))
  const v4 = ipv4(name)
  if (v4 !== undefined) return ipv4Class(v4)
  // A single label (`metadata`, `intranet`) resolves only through a local search domain.
  if (!name.includes('.') || PRIVATE_SUFFIXES.some((suffix) => name.endsWith(suffix))) return 'private'
  return undefined
}

// Names only a local network resolves: mDNS, cloud metadata (metadata.google.internal), home routers.
const PRIVATE_SUFFIXES = ['.local', '.internal', '.localdomain', '.lan', '.home.arpa', '.intranet', '.corp']

/** The address as a 32-bit number, for the dotted form only (the URL parser has normalised others). */
function ipv4(name: string): number | undefined {
  const parts = name.split('.')
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined
  return parts.reduce((n, p) => n * 256 + Number(p), 0)
}

const inRange = (address: number, base: string, bits: number): boolean => {
  const size = 2 ** (32 - bits)
  return Math.floor(address / size) === Math.floor(ipv4(base)! / size)
}

// Loopback first; everything else here is not a public unicast address.
const NOT_PUBLIC_V4: [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 3],
]

function ipv4Class(address: number): 'loopback' | 'private' | undefined {
  if (inRange(address, '127.0.0.0', 8)) return 'loopback'
  return NOT_PUBLIC_V4.some(([base, bits]) => inRange(address, base, bits)) ? 'private' : undefined
}

/** Eight 16-bit groups, `::` expanded; undefined for anything the URL parser would not produce. */
function ipv6Groups(text: string): number[] | undefined {
  const [head = '', tail, extra] = text.split('::')
  if (extra !== undefined) return undefined
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const missing = 8 - left.length - right.length
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right]
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined
  return groups.map((g) => parseInt(g, 16))
}

// By the first group: fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local, ff00::/8 multicast.
const NOT_PUBLIC_V6: [value: number, mask: number][] = [
  [0xfc00, 0xfe00],
  [0xfe80, 0xffc0],
  [0xfec0, 0xffc0],
  [0xff00, 0xff00],
]

function ipv6Class(text: string): 'loopback' | 'private' | undefined {
  const g = ipv6Groups(text)
  if (!g) return 'private'
  const [first = 0] = g
  const zeroPrefix = (n: number) => g.slice(0, n).every((x) => x === 0)
  if (zeroPrefix(7) && g[7] === 1) return 'loopback'
  if (zeroPrefix(8)) return 'private'
  // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4 address that decides.
  const embedded = g[6]! * 65536 + g[7]!
  if (zeroPrefix(5) && g[5] === 0xffff) return ipv4Class(embedded)
  // The deprecated IPv4-compatible form (::a.b.c.d) is no public address whatever it embeds.
  if (zeroPrefix(6)) return ipv4Class(embedded) ?? 'private'
  if (first === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return ipv4Class(embedded)
  // 6to4 (2002:a.b.c.d::/48) carries its IPv4 address in the next two groups.
  if (first === 0x2002) return ipv4Class(g[1]! * 65536 + g[2]!)
  if (NOT_PUBLIC_V6.some(([value, mask]) => (first & mask) === value)) return 'private'
  // SIIT (::ffff:0:a.b.c.d), local-use NAT64 (64:ff9b:1::/48), Teredo (2001::/32), documentation
  // (2001:db8::/32), discard-only (100::/64): none is a public host of its own.
  if (zeroPrefix(4) && g[4] === 0xffff && g[5] === 0) return 'private'
  if (first === 0x64 && g[1] === 0xff9b && g[2] === 1) return 'private'
  if (first === 0x2001 && (g[1] === 0 || g[1] === 0xdb8)) return 'private'
  if (first === 0x100 && g.slice(1, 4).every((x) => x === 0)) return 'private'
  return undefined
}
