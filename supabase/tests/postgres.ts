import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin'
// initdb refuses root: as root, the server runs as the `postgres` system user.
const asRoot = process.getuid?.() === 0

const run = (command: string, args: string[]) =>
  asRoot
    ? execFileSync('runuser', ['-u', 'postgres', '--', join(BIN, command), ...args], { stdio: 'pipe' })
    : execFileSync(join(BIN, command), args, { stdio: 'pipe' })

export type Postgres = {
  /** Runs SQL through psql in `database` (default `postgres`); resolves with its output, rejects with psql's error text. */
  sql: (text: string, database?: string) => Promise<string>
  stop: () => void
}

/** A throwaway PostgreSQL 15 cluster listening only on a Unix socket in a temp folder. */
export function startPostgres(): Postgres {
  if (!existsSync(join(BIN, 'initdb'))) throw new Error(`PostgreSQL not found in ${BIN}: apt-get install postgresql (or set PG_BIN)`)
  const dir = mkdtempSync(join(tmpdir(), 'tiktok-connect-pg-'))
  chmodSync(dir, 0o755)
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString())
    chownSync(dir, uid, gid)
  }
  const data = join(dir, 'data')
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'])
  run('pg_ctl', ['-D', data, '-o', `-c listen_addresses='' -k ${dir} -c fsync=off`, '-w', '-l', join(dir, 'log'), 'start'])

  const sql = (text: string, database = 'postgres') =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(join(BIN, 'psql'), ['-h', dir, '-U', 'postgres', '-d', database, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      })
      let out = ''
      let err = ''
      child.stdout.on('data', (d) => (out += d))
      child.stderr.on('data', (d) => (err += d))
      child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(err.trim() || `psql exited ${code}`))))
      child.stdin.end(text)
    })

  const stop = () => {
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return { sql, stop }
}
