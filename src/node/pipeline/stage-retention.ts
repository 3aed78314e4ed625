import { ActivationErrorCode, ActivationStageError } from '../../shared/errors/protocol-errors.js'
import { sessionChainCache } from '../prefix-reuse.js'
import type { PrefixCache } from '../prefix-cache.js'
import type { ShardSession } from '../../engine/types.js'
import type { OpenFrame } from '../../protocols/activations/index.js'

/**
 * A middle or last stage's retained KV caches (protocols/activations.md "Prefix reuse"): the session of a
 * request that ended with END is kept under its request id, within the budget (least recently used freed
 * first); an OPEN with `prefix` takes it back, cut to `keep` positions, or is refused with PREFIX_MISSING.
 * The stage knows no tokens: the first stage decided the reuse, and every stage saw the same frames.
 */
export class StageRetention {
  readonly cache: PrefixCache<readonly ShardSession[]>

  constructor (budgetBytes: () => number) {
    this.cache = sessionChainCache(budgetBytes)
  }

  /** The session for `open`: a new one (`create`), or the retained one OPEN's `prefix` names, cut at `keep`. */
  acquire (open: OpenFrame, create: () => ShardSession): ShardSession {
    const p = open.prefix
    if (p === undefined) return create()
    const entry = this.cache.takeById(p.requestId)
    const session = entry?.value[0]
    if (entry === undefined || session === undefined) {
      this.cache.stats.misses++
      throw new ActivationStageError(ActivationErrorCode.PrefixMissing, `the KV of ${p.requestId} is not retained here`)
    }
    try {
      if (session.contextSize < open.contextSize) throw new ActivationStageError(ActivationErrorCode.PrefixMissing, `the retained KV of ${p.requestId} has ${session.contextSize} cells, OPEN asks for ${open.contextSize}`)
      if (session.position < p.keep) throw new ActivationStageError(ActivationErrorCode.PrefixMissing, `the retained KV of ${p.requestId} holds ${session.position} positions, OPEN keeps ${p.keep}`)
      session.truncate(p.keep)
    } catch (err) {
      session.dispose()
      this.cache.stats.misses++
      if (err instanceof ActivationStageError) throw err
      throw new ActivationStageError(ActivationErrorCode.PrefixMissing, `the retained KV of ${p.requestId} cannot be cut at ${p.keep}: ${(err as Error).message}`)
    }
    this.cache.stats.hits++
    this.cache.stats.reusedTokens += p.keep
    return session
  }

  /** Keeps the session of a request that ended with END (`bytes` of KV), or frees it. */
  release (requestId: string, session: ShardSession, ended: boolean, bytes: number): void {
    if (!ended) { session.dispose(); return }
    this.cache.put({ id: requestId, tokens: [], bytes, value: [session] })
  }

  clear (): void { this.cache.clear() }
}
