// Every relative link and anchor in README.md and docs/*.md resolves: the file exists, and the anchor
// is one of GitHub's heading slugs in it.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './snippets.ts'

const pages = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

/** GitHub's slug: lower case, punctuation but `-` and `_` dropped, spaces to `-`, repeats numbered. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  let fenced = false
  for (const line of readFileSync(join(ROOT, file), 'utf8').split('\n')) {
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

describe('links in README.md and docs/', () => {
  for (const page of pages)
    it(`${page}: every relative link and anchor resolves`, () => {
      const broken: string[] = []
      let fenced = false
      readFileSync(join(ROOT, page), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (line.startsWith('```')) fenced = !fenced
          if (fenced) return
          for (const [, target] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
            if (/^[a-z]+:/i.test(target!)) continue
            const [path, anchor] = target!.split('#') as [string, string | undefined]
            const file = path ? relative(ROOT, join(dirname(join(ROOT, page)), path)) : page
            if (!existsSync(join(ROOT, file))) broken.push(`${page}:${i + 1}: ${target} (no file ${file})`)
            else if (anchor !== undefined && (!file.endsWith('.md') || !anchors(file).has(anchor)))
              broken.push(`${page}:${i + 1}: ${target} (no heading #${anchor} in ${file})`)
          }
        })
      expect(broken).toEqual([])
    })
})
