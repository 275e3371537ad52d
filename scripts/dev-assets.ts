// What `npm run dev` serves on the Worker's origin: public/, a team's own pages from local/ under
// /local/, and /__dev/ (where this run's sandbox is, and a sign-in helper for the pages). A folder of
// the run, not public/ itself: two runs on two ports in one checkout each say where their own sandbox
// is, and nothing of it can reach a deploy, which uploads public/ alone.
import { copyFileSync, cpSync, existsSync, mkdirSync, rmSync, statSync, watch, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** Mounted at `/__dev/`: what a page under `npm run dev` needs to sign in to the sandbox. */
export type DevSettings = {
  /** The sandbox's origin, e.g. `http://127.0.0.1:8791`. */
  sandbox: string
  /** The Supabase project URL the Worker uses: the sandbox's Supabase stand-in. */
  supabase_url: string
  /** Who may sign in there with a password. */
  demo_user: { email: string; password: string }
}

export type DevAssets = { dir: string; close: () => void }

/**
 * Copies `from` into `to`, then keeps the copy in step: wrangler dev watches `to` and serves each
 * change at once, as it would from public/ itself.
 */
function mirror(from: string, to: string): () => void {
  cpSync(from, to, { recursive: true })
  const watcher = watch(from, { recursive: true }, (_, name) => {
    if (!name) return
    const source = join(from, name)
    const target = join(to, name)
    try {
      if (statSync(source).isDirectory()) cpSync(source, target, { recursive: true })
      else {
        mkdirSync(dirname(target), { recursive: true })
        copyFileSync(source, target)
      }
    } catch {
      // Gone (deleted, or renamed away by an editor's atomic save, whose new name has its own event).
      if (!existsSync(source)) rmSync(target, { recursive: true, force: true })
    }
  })
  return () => watcher.close()
}

/** Builds the folder in `dir` (inside the run's folder) from the checkout at `root`. */
export function devAssets(root: string, dir: string, settings: DevSettings): DevAssets {
  const stops = [mirror(join(root, 'public'), dir)]
  if (existsSync(join(root, 'local'))) stops.push(mirror(join(root, 'local'), join(dir, 'local')))
  mkdirSync(join(dir, '__dev'), { recursive: true })
  copyFileSync(join(root, 'scripts/dev-pages/sandbox.js'), join(dir, '__dev/sandbox.js'))
  writeFileSync(join(dir, '__dev/sandbox.json'), `${JSON.stringify(settings, null, 2)}\n`)
  return {
    dir,
    close: () => {
      for (const stop of stops) stop()
    },
  }
}
