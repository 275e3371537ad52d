// `npm run dev` as a person runs it, for the tests that drive it (test/node/dev-loop.test.ts, e2e/dev-ports.test.ts).
import { spawn } from 'node:child_process'
import { ROOT } from '../scripts/stack.ts'

export type DevRun = ReturnType<typeof runDev>

/**
 * `node scripts/dev.ts <args>` in its own process group, so a test can press Ctrl+C on all of it
 * (`stop`). PORT, SANDBOX_PORT and INSPECTOR_PORT are cleared: only `args` choose the ports.
 */
export function runDev(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['scripts/dev.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, PORT: '', SANDBOX_PORT: '', INSPECTOR_PORT: '', FORCE_COLOR: '0', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c))
  child.stderr.on('data', (c: Buffer) => (stderr += c))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  return {
    child,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    /** Resolves once the banner is out (or the run has ended); `timeoutMs` bounds a wrangler that never answers. */
    async ready(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      while (!stdout.includes('Press Ctrl+C to stop.') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100))
    },
    /** Ctrl+C on the whole run; answers its exit code. */
    stop() {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGINT')
      return exited
    },
  }
}
