// The docs' link check, for docs-links.test.ts and its own unit test: every relative link and anchor
// in a page resolves, the file existing and the anchor one of GitHub's heading slugs in it.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

/** GitHub's slug: lower case, punctuation but `-` and `_` dropped, spaces to `-`, repeats numbered. */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  let fenced = false
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const heading = !fenced && /^#{1,6} (.+)$/.exec(line)
    if (!heading) continue
    const base = heading[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n ? `${base}-${n}` : base)
  }
  return out
}

/** `page` (relative to `root`): each link outside code fences that points nowhere, as `page:line: target (why)`. */
export function brokenLinks(root: string, page: string): string[] {
  const broken: string[] = []
  let fenced = false
  readFileSync(join(root, page), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.startsWith('```')) fenced = !fenced
      if (fenced) return
      for (const [, target] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue
        const [path, anchor] = target!.split('#') as [string, string | undefined]
        const file = path ? relative(root, join(dirname(join(root, page)), path)) : page
        if (!existsSync(join(root, file))) broken.push(`${page}:${i + 1}: ${target} (no file ${file})`)
        else if (anchor !== undefined && (!file.endsWith('.md') || !anchors(readFileSync(join(root, file), 'utf8')).has(anchor)))
          broken.push(`${page}:${i + 1}: ${target} (no heading #${anchor} in ${file})`)
      }
    })
  return broken
}
