import { AppError } from './errors'
import type { Logger } from './log'
import { decryptToken, encryptToken, isEncryptedToken, type TokenKey } from './token-crypto'

/**
 * The TikTok token at rest: encrypted (AES-256-GCM, `token-crypto.ts`) when TOKEN_ENCRYPTION_KEY is
 * set, plaintext otherwise. The keys are imported once per isolate by the composition root.
 */
export class StoredTokens {
  readonly #keys: Promise<TokenKey[]> | undefined

  constructor(keys: Promise<TokenKey[]> | undefined) {
    this.#keys = keys
  }

  /** The token as it is stored. */
  async encrypt(token: string, userId: string): Promise<string> {
    return this.#keys ? encryptToken(token, userId, await this.#keys) : token
  }

  /** The usable token from a stored value, plaintext or encrypted; registered with the log as a secret. */
  async decrypt(stored: string, userId: string, log: Logger): Promise<string> {
    if (!isEncryptedToken(stored)) {
      log.protect(stored)
      return stored
    }
    // An encrypted token with no key configured: the key was removed, not rotated.
    if (!this.#keys) throw new AppError('misconfigured', { detail: { settings: ['TOKEN_ENCRYPTION_KEY'] } })
    let token: string
    try {
      token = await decryptToken(stored, userId, await this.#keys)
    } catch (cause) {
      throw new AppError('token_unreadable', { detail: { reason: cause instanceof Error ? cause.message : 'decrypt' } })
    }
    log.protect(token)
    return token
  }
}
