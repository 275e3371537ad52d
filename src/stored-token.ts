import type { Config } from './env'
import { AppError, errors } from './errors'
import type { Logger } from './log'
import { decryptToken, encryptToken, isEncryptedToken } from './token-crypto'

/** The token as stored: encrypted when a key is configured. */
export async function sealToken(config: Config, token: string, userId: string): Promise<string> {
  return config.tokenEncryptionKeys ? encryptToken(token, userId, config.tokenEncryptionKeys) : token
}

/** The usable token from a stored value, plaintext or encrypted; registered with the log as a secret. */
export async function openToken(config: Config, log: Logger, stored: string, userId: string): Promise<string> {
  const keys = config.tokenEncryptionKeys
  if (!isEncryptedToken(stored)) {
    log.protect(stored)
    return stored
  }
  // An encrypted token with no key configured: the key was removed, not rotated.
  if (!keys) throw errors.misconfigured(['TOKEN_ENCRYPTION_KEY'])
  let token: string
  try {
    token = await decryptToken(stored, userId, keys)
  } catch (cause) {
    throw new AppError('token_unreadable', { detail: { reason: cause instanceof Error ? cause.message : 'decrypt' } })
  }
  log.protect(token)
  return token
}
