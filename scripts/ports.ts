// Which of the dev loop's ports another program holds, and who: checked before anything starts.
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { createServer } from 'node:net'

export type PortRole = 'worker' | 'sandbox' | 'inspector'

/** What a person types to move one role to another port. */
export const PORT_CHOICE: Record<PortRole, { what: string; flag: string; env: string }> = {
  worker: { what: 'the Worker', flag: '--port', env: 'PORT' },
  sandbox: { what: 'the sandbox', flag: '--sandbox-port', env: 'SANDBOX_PORT' },
  inspector: { what: "wrangler's debugger", flag: '--inspector-port', env: 'INSPECTOR_PORT' },
}

/**
 * The addresses each role must have to itself. The Worker also needs `::1`: the banner says
 * `http://localhost:…`, and a browser that finds another program on `[::1]` talks to it instead.
 */
const ADDRESSES: Record<PortRole, string[]> = { worker: ['127.0.0.1', '::1'], sandbox: ['127.0.0.1'], inspector: ['127.0.0.1'] }

export type PortInUse = { role: PortRole; port: number; address: string; holder: string | undefined; suggestion: number | undefined }

type Probe = 'free' | 'taken' | 'absent'

/** Binds and lets go at once. `absent`: the machine has no such address (no IPv6), nothing to guard. */
function probe(port: number, host: string): Promise<Probe> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', (error: NodeJS.ErrnoException) => {
      resolve(error.code === 'EADDRNOTAVAIL' || error.code === 'EAFNOSUPPORT' ? 'absent' : 'taken')
    })
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve('free')))
  })
}

const run = (file: string, args: string[]): Promise<string> =>
  new Promise((resolve) => execFile(file, args, { timeout: 2000 }, (error, stdout) => resolve(error ? '' : stdout)))

/** The pid listening on `port`, from Linux's own tables: the socket's inode in /proc/net, then the process whose fd is it. */
function listenerFromProc(port: number): string | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0')
  const inodes = new Set<string>()
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try {
      text = readFileSync(table, 'utf8')
    } catch {
      continue
    }
    // Columns: sl, local address (hex ip:port), remote, state (0A is LISTEN), …, inode (the 10th).
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols[1]?.endsWith(`:${hexPort}`) && cols[3] === '0A' && cols[9]) inodes.add(cols[9])
    }
  }
  if (inodes.size === 0) return undefined
  for (const pid of readdirSafe('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    for (const fd of readdirSafe(`/proc/${pid}/fd`)) {
      try {
        const target = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]
        if (target && inodes.has(target)) return pid
      } catch {
        // Gone meanwhile, or not ours to read.
      }
    }
  }
  return undefined
}

const readdirSafe = (path: string): string[] => {
  try {
    return readdirSync(path)
  } catch {
    return []
  }
}

/**
 * `node (pid 2534, in /work/main)`, from Linux's /proc, or else `ss` or `lsof`; undefined when none
 * can tell (another user's process). Never the command line: it may carry a secret.
 */
export async function holderOf(port: number): Promise<string | undefined> {
  let name: string | undefined
  let pid = listenerFromProc(port)
  if (pid) {
    try {
      name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
    } catch {
      // Gone meanwhile.
    }
  } else {
    const ss = /users:\(\("([^"]+)",pid=(\d+)/.exec(await run('ss', ['-Hltnp', `sport = :${port}`]))
    if (ss) [, name, pid] = ss
    else {
      const lsof = await run('lsof', ['-nP', `-iTCP:${port}`, '-sTCP:LISTEN', '-Fpc'])
      pid = /^p(\d+)$/m.exec(lsof)?.[1]
      name = /^c(.+)$/m.exec(lsof)?.[1]
    }
  }
  if (!pid) return undefined
  let cwd = ''
  try {
    cwd = `, in ${readlinkSync(`/proc/${pid}/cwd`)}`
  } catch {
    // Not Linux, or not ours to read.
  }
  return printable(`${name ?? 'a process'} (pid ${pid}${cwd})`)
}

/** Another program's name or folder, made safe for a terminal: no control characters (escape sequences). */
export const printable = (text: string, max = 200): string => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?').slice(0, max)

async function firstTaken(role: PortRole, port: number): Promise<string | undefined> {
  for (const address of ADDRESSES[role]) if ((await probe(port, address)) === 'taken') return address
  return undefined
}

/** The next port after `port` that is free for `role` and not one of `reserved`. */
async function freePortAfter(role: PortRole, port: number, reserved: number[]): Promise<number | undefined> {
  for (let candidate = port + 1; candidate <= Math.min(port + 50, 65535); candidate++) {
    if (!reserved.includes(candidate) && !(await firstTaken(role, candidate))) return candidate
  }
  return undefined
}

/** Every port of `ports` another program listens on, with who holds it and a free one to pick instead. */
export async function portsInUse(ports: Record<PortRole, number>): Promise<PortInUse[]> {
  const taken: PortInUse[] = []
  for (const role of Object.keys(ports) as PortRole[]) {
    const port = ports[role]
    const address = await firstTaken(role, port)
    if (!address) continue
    taken.push({ role, port, address, holder: await holderOf(port), suggestion: await freePortAfter(role, port, Object.values(ports)) })
  }
  return taken
}

/**
 * Which ports are taken and by whom, then one command that moves every one of them to a free port
 * (as flags, and as environment variables).
 */
export function describePortsInUse(taken: PortInUse[]): string {
  const lines = taken.map(({ role, port, address, holder }) => {
    const where = address.includes(':') ? `[${address}]` : address
    return `Port ${port} (${PORT_CHOICE[role].what}) is already in use on ${where}${holder ? ` by ${holder}` : ' by another program'}.`
  })
  if (taken.some((t) => t.holder?.startsWith('workerd ')))
    lines.push("workerd is wrangler dev's runtime: another npm run dev (or wrangler dev) may still be running.")
  const moves = taken.map((t) => ({ ...PORT_CHOICE[t.role], to: t.suggestion ?? 'N' }))
  lines.push(
    'Stop that program, or pick other ports:',
    `  npm run dev -- ${moves.map((m) => `${m.flag} ${m.to}`).join(' ')}`,
    `  ${moves.map((m) => `${m.env}=${m.to}`).join(' ')} npm run dev`,
  )
  return lines.join('\n')
}
