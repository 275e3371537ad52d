// vitest globalSetup (runs in Node): the sandbox's PostgreSQL for the workerd tests. workerd cannot
// run PGlite, so this process holds one migrated database per test file and serves it on loopback.
import type { TestProject } from 'vitest/node'
import { databaseServer } from '../sandbox/database-remote.ts'
import { openDatabase } from '../sandbox/pglite.ts'
import { serve } from '../scripts/serve.ts'

export default async function setup(project: TestProject) {
  // Built (or read from the cache) before any test asks, so the first file does not wait alone.
  await (await openDatabase()).close()
  const databases = databaseServer(openDatabase)
  const server = await serve(databases.app.fetch, 0)
  const { port } = server.address() as { port: number }
  project.provide('sandboxDatabase', `http://127.0.0.1:${port}`)
  return async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
    await databases.close()
  }
}
