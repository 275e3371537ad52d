// What test/database-setup.ts (Node) hands the workerd tests through vitest's provide/inject.
import 'vitest'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the sandbox database server on loopback. */
    sandboxDatabase: string
  }
}
