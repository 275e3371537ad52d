// Every relative link and anchor in README.md and docs/*.md resolves (test/node/links.ts), and the
// check itself catches a broken one, shown on made-up docs.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { anchors, brokenLinks } from './links.ts'
import { ROOT } from './snippets.ts'

const pages = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

describe('links in README.md and docs/', () => {
  for (const page of pages)
    it(`${page}: every relative link and anchor resolves`, () => {
      expect(brokenLinks(ROOT, page)).toEqual([])
    })
})

describe('the link check', () => {
  it('slugs headings as GitHub does: punctuation dropped, repeats numbered, fenced lines not headings', () => {
    const text = "# The proxy\n## A call\n### For the browser (the user's Supabase session)\n## A call\n```sh\n# not a heading\n```\n"
    expect([...anchors(text)]).toEqual(['the-proxy', 'a-call', 'for-the-browser-the-users-supabase-session', 'a-call-1'])
  })

  it('reports a broken anchor, a missing file and a link to an anchor of a non-Markdown file; passes the good ones', () => {
    const root = mkdtempSync(join(tmpdir(), 'docs-links-'))
    try {
      mkdirSync(join(root, 'docs'))
      writeFileSync(join(root, 'docs/other.md'), '# Other\n\n## Key rotation\n')
      writeFileSync(join(root, 'docs/notes.txt'), 'plain\n')
      writeFileSync(
        join(root, 'README.md'),
        [
          '# Made up',
          '## Here',
          '[fine](docs/other.md#key-rotation) [fine too](#here) [a site](https://example.com/#nowhere) [file](docs/notes.txt)',
          '[broken anchor](docs/other.md#key-rotations)',
          '[missing](docs/gone.md)',
          '[own page](#not-here)',
          '```md',
          '[in a fence](docs/gone.md)',
          '```',
          '[anchor in text](docs/notes.txt#plain)',
        ].join('\n'),
      )
      expect(brokenLinks(root, 'README.md')).toEqual([
        'README.md:4: docs/other.md#key-rotations (no heading #key-rotations in docs/other.md)',
        'README.md:5: docs/gone.md (no file docs/gone.md)',
        'README.md:6: #not-here (no heading #not-here in README.md)',
        'README.md:10: docs/notes.txt#plain (no heading #plain in docs/notes.txt)',
      ])
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})
