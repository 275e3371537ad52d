// vitest globalSetup (runs in Node): the sandbox's PostgreSQL for the workerd tests. workerd cannot
// run PGlite, so this process holds one migrated database per test file and serves it on loopback.
import type { TestProject } from 'vitest/node'
import { databaseServer } from '../sandbox/database-remote.ts'
import { openDatabase } from '../sandbox/pglite.ts'
import { serve } from '../scripts/serve.ts'

const WARM_DATABASES = 3

export default async function setup(project: TestProject) {
  const token = crypto.randomUUID()
  const databases = databaseServer(openDatabase, token)
  // Opening a database blocks this process for a second or more: done here, before the tests run,
  // it cannot stall another file's queries past the Worker's upstream timeout. Files given back are
  // reused, so a few cover the files that run at the same time.
  await databases.warm(WARM_DATABASES)
  const server = await serve(databases.app.fetch, 0)
  const { port } = server.address() as { port: number }
  project.provide('sandboxDatabase', { url: `http://127.0.0.1:${port}`, token })
  return async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
    await databases.close()
  }
}
