// The docs' copyable blocks, found by the `<!-- snippet: <name> -->` line just above their fence, so a
// failing test names the file and line a reader copies from.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export const ROOT = join(import.meta.dirname, '../..')

export type Snippet = { code: string; lang: string; where: string }

export function snippet(file: string, name: string): Snippet {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n')
  const marker = lines.findIndex((line) => line.trim() === `<!-- snippet: ${name} -->`)
  if (marker < 0) throw new Error(`${file}: no <!-- snippet: ${name} --> marker`)
  const fence = /^```(\w*)$/.exec(lines[marker + 1] ?? '')
  if (!fence) throw new Error(`${file}:${marker + 1}: the snippet marker ${name} is not right above a fenced block`)
  const end = lines.findIndex((line, i) => i > marker + 1 && line === '```')
  return { code: lines.slice(marker + 2, end).join('\n'), lang: fence[1]!, where: `${file}:${marker + 3}` }
}
