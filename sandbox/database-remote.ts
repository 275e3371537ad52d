// The sandbox database across a process boundary: the workerd tests cannot run PGlite themselves, so a
// Node process (vitest's globalSetup) holds one database per test file and serves it on loopback.
import { Hono } from 'hono'
import type { SandboxDatabase } from './database.ts'

/** Which database a request is for: each test file names its own. */
export const DATABASE_HEADER = 'x-sandbox-database'
/** The server's random token: only the test run that started it may run SQL through it. */
export const TOKEN_HEADER = 'x-sandbox-token'

/**
 * Serves one database per `DATABASE_HEADER` value. A database given back (DELETE /) is emptied and
 * handed to the next key: opening one costs a second of this process's only thread, emptying it
 * milliseconds, and test files come and go far more often than they overlap. One whose schema a
 * script changed (`/exec`) is closed instead: emptying would not undo the change.
 */
export function databaseServer(open: () => Promise<SandboxDatabase>, token: string) {
  const databases = new Map<string, Promise<SandboxDatabase>>()
  const idle: SandboxDatabase[] = []
  // Keys already given back: a late request must not take a database it would never return.
  const closed = new Set<string>()
  const changed = new Set<string>()
  const app = new Hono<{ Variables: { db: SandboxDatabase } }>()
  app.use(async (c, next) => {
    if (c.req.header(TOKEN_HEADER) !== token) return c.json({ message: 'unknown caller' }, 403)
    const key = c.req.header(DATABASE_HEADER)
    if (!key) return c.json({ message: `${DATABASE_HEADER} is required` }, 400)
    if (closed.has(key)) return c.json({ message: 'this database was given back' }, 410)
    if (c.req.method === 'DELETE' && c.req.path === '/') {
      closed.add(key)
      const db = await databases.get(key)?.catch(() => undefined)
      databases.delete(key)
      if (db && changed.delete(key)) await db.close()
      else if (db) {
        await db.reset([])
        idle.push(db)
      }
      return c.body(null, 204)
    }
    if (!databases.has(key)) {
      const reused = idle.pop()
      const opening = reused ? Promise.resolve(reused) : open()
      // A failed open is not kept: the next request tries again.
      opening.catch(() => databases.delete(key))
      databases.set(key, opening)
    }
    c.set('db', await databases.get(key)!)
    await next()
  })
  app.all('/rest/v1/*', (c) => c.var.db.rest(c.req.raw))
  app.post('/rows', async (c) => {
    const { sql, params } = await c.req.json<{ sql: string; params?: unknown[] }>()
    try {
      return c.json(await c.var.db.rows(sql, params))
    } catch (error) {
      return c.json({ message: error instanceof Error ? error.message : String(error) }, 400)
    }
  })
  app.post('/exec', async (c) => {
    changed.add(c.req.header(DATABASE_HEADER)!)
    try {
      await c.var.db.exec(await c.req.text())
      return c.body(null, 204)
    } catch (error) {
      return c.json({ message: error instanceof Error ? error.message : String(error) }, 400)
    }
  })
  app.post('/reset', async (c) => {
    await c.var.db.reset(await c.req.json())
    return c.body(null, 204)
  })
  return {
    app,
    /** Opens `count` databases now, before any test waits on this process's one thread. */
    async warm(count: number) {
      for (let i = 0; i < count; i++) idle.push(await open())
    },
    async close() {
      for (const db of [...idle, ...(await Promise.all(databases.values()))]) await db.close()
      databases.clear()
      idle.length = 0
    },
  }
}

/** The client side: a SandboxDatabase that lives in the server at `base`, under `key`. */
export function remoteDatabase(server: { url: string; token: string }, key: string, fetcher: typeof fetch = fetch): SandboxDatabase {
  const base = server.url
  const send = async (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers)
    headers.set(DATABASE_HEADER, key)
    headers.set(TOKEN_HEADER, server.token)
    return fetcher(`${base}${path}`, { ...init, headers })
  }
  const post = async (path: string, body: unknown) => {
    const response = await send(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    if (!response.ok) throw new Error(`sandbox database ${path}: ${response.status} ${await response.text()}`)
    return response
  }
  return {
    async rest(request) {
      const url = new URL(request.url)
      const body = ['GET', 'HEAD'].includes(request.method) ? undefined : await request.arrayBuffer()
      return send(url.pathname + url.search, { method: request.method, headers: request.headers, body })
    },
    rows: async <T>(sql: string, params: unknown[] = []) => (await (await post('/rows', { sql, params })).json()) as T[],
    async exec(script) {
      const response = await send('/exec', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: script })
      if (!response.ok) throw new Error(`sandbox database /exec: ${response.status} ${await response.text()}`)
    },
    async reset(users) {
      await post('/reset', users)
    },
    async close() {
      await send('/', { method: 'DELETE' })
    },
  }
}
