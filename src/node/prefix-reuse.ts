import { createLogger } from '../shared/log.js'
import { PrefixCache } from './prefix-cache.js'
import { kvBytesPerLayer } from './pipeline/model-card.js'
import type { LayerRange, ModelMetadata, ShardSession } from '../engine/types.js'

const log = createLogger('node:prefix-reuse')

/** KV cells are allocated in multiples of this (src/engine/swa-cells.ts KV_PAD) */
const KV_PAD = 256
/** the engine's prefill micro-batch: below it a sliding-window cache's size depends on the exact context size */
const UBATCH = 512

/**
 * KV cells to create a session with for a request that needs `cells`: rounded up to the engine's padding (the
 * memory is allocated padded anyway), so the retained KV of this turn can hold the next turn's few extra
 * tokens; never above `cap`. Models with a sliding window keep the exact size below one micro-batch
 * (their ring's size depends on it, and with it the order of attention sums that llama.cpp's results have).
 */
export function sessionCells (cells: number, cap: number, meta: Pick<ModelMetadata, 'swaWindow'>): number {
  const slides = meta.swaWindow?.some((w) => w > 0) ?? false
  if (slides && cells < UBATCH) return cells
  // the engine's KV store gives a sequence pages as it fills them: a larger cap costs nothing, and lets the next
  // turn of a conversation (more tokens) reuse this one's KV; a sliding-window ring is sized from it, so round only
  if (!slides) return Math.max(cells, cap)
  return Math.max(cells, Math.min(cap, Math.ceil(cells / KV_PAD) * KV_PAD))
}

/** Bytes of the KV cache of one session of `contextSize` cells on the layers of `range` (padded, f16 K+V). */
export function sessionKvBytes (meta: Pick<ModelMetadata, 'nLayers' | 'kvBytesPerTokenPerLayer' | 'swaWindow'>, contextSize: number, range: LayerRange = { start: 0, end: meta.nLayers }): number {
  const perLayer = kvBytesPerLayer(meta, Math.ceil(contextSize / KV_PAD) * KV_PAD)
  let n = 0
  for (let il = range.start; il < range.end; il++) n += perLayer[il] ?? 0
  return n
}

/** A prefix cache whose entries are a chain of sessions (one per in-process shard). */
export function sessionChainCache (budgetBytes: () => number): PrefixCache<readonly ShardSession[]> {
  return new PrefixCache({ budgetBytes, dispose: (sessions) => { for (const s of sessions) s.dispose() } })
}

/**
 * Reuse of a retained chain for a request whose first `tokens` are to be fed and which needs `cells` cells:
 * the longest-prefix entry with enough cells, truncated to the common prefix — at most tokens.length − 1, since
 * the last prompt token must be run to get logits. Undefined (a cold start) when no entry fits or truncation
 * is impossible (a sliding-window cache that no longer holds the window before the cut).
 */
export function takeRetainedChain (cache: PrefixCache<readonly ShardSession[]>, tokens: readonly number[], cells: number): { id: string, sessions: readonly ShardSession[], reused: number } | undefined {
  const hit = cache.take(tokens, (e) => e.value.every((s) => s.contextSize >= cells))
  if (hit === undefined) return undefined
  const reused = Math.min(hit.common, tokens.length - 1)
  const sessions = hit.entry.value
  try {
    for (const s of sessions) s.truncate(reused)
  } catch (err) {
    log.debug({ err, reused }, 'retained KV cannot be cut at the common prefix: cold prefill')
    for (const s of sessions) s.dispose()
    cache.stats.hits--
    cache.stats.misses++
    return undefined
  }
  cache.stats.reusedTokens += reused
  return { id: hit.entry.id, sessions, reused }
}

/** Counters of retained KV for /metrics, summed over caches. */
export interface PrefixTotals { hits: number, misses: number, evictions: number, reusedTokens: number, bytes: number, entries: number }

export function sumPrefixStats (caches: ReadonlyArray<Pick<PrefixCache<unknown>, 'stats' | 'bytes' | 'size'> | undefined>): PrefixTotals {
  const out: PrefixTotals = { hits: 0, misses: 0, evictions: 0, reusedTokens: 0, bytes: 0, entries: 0 }
  for (const c of caches) {
    if (c === undefined) continue
    out.hits += c.stats.hits
    out.misses += c.stats.misses
    out.evictions += c.stats.evictions
    out.reusedTokens += c.stats.reusedTokens
    out.bytes += c.bytes
    out.entries += c.size
  }
  return out
}
