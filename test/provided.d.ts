// What test/database-setup.ts (Node) hands the workerd tests through vitest's provide/inject.
import 'vitest'

declare module 'vitest' {
  export interface ProvidedContext {
    /** The sandbox database server on loopback, and the token it takes. */
    sandboxDatabase: { url: string; token: string }
  }
}
