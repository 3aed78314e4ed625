/**
 * Retained KV caches of finished requests, for prefix reuse (issue 12 point 4): each entry is the KV of
 * `tokens` (positions 0 … tokens.length − 1) held by some sessions, the request id that produced it, and
 * its bytes. Least recently used entries are evicted whenever the total exceeds the budget, which the
 * owner computes from its memory budget minus what running requests hold. Pure bookkeeping: `dispose`
 * frees an entry's value (native KV) when it is evicted or cleared. Entries are taken out while a request
 * uses them (exclusive use) and put back, under the new request's id, when it ends.
 */

export interface RetainedEntry<T> {
  /** the request id that produced the KV (stages further down the ring keep it under this id) */
  id: string
  /** the token ids whose KV is held, in position order */
  tokens: readonly number[]
  bytes: number
  value: T
}

export interface PrefixHit<T> {
  entry: RetainedEntry<T>
  /** length of the longest common prefix of the entry's tokens and the request's */
  common: number
}

export interface PrefixCacheStats {
  hits: number
  misses: number
  evictions: number
  /** prefix tokens not prefilled thanks to hits */
  reusedTokens: number
}

export interface PrefixCacheOptions<T> {
  /** bytes the cache may hold now (re-read on every put and trim) */
  budgetBytes: () => number
  dispose: (value: T) => void
  /**
   * most entries kept (default DEFAULT_MAX_ENTRIES); the budget in bytes is what bounds them in practice. The engine
   * keeps idle sequences' pages above those of the computing ones (src/engine/kv-compactor.ts), so retained entries
   * cost memory, not step time
   */
  maxEntries?: number
  /** shortest common prefix worth a hit (default DEFAULT_MIN_MATCH: a shared BOS or first word is not worth an entry) */
  minMatch?: number
}

export const DEFAULT_MIN_MATCH = 16
/** a bound on bookkeeping (take() compares a request's tokens with every entry's), far above what budgets hold of real conversations */
export const DEFAULT_MAX_ENTRIES = 256

/** Length of the longest common prefix of a and b. */
export function commonPrefixLength (a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n && a[i] === b[i]) i++
  return i
}

export class PrefixCache<T> {
  /** insertion order = recency (oldest first) */
  private readonly entries = new Map<string, RetainedEntry<T>>()
  private total = 0
  readonly stats: PrefixCacheStats = { hits: 0, misses: 0, evictions: 0, reusedTokens: 0 }

  constructor (private readonly options: PrefixCacheOptions<T>) {}

  get bytes (): number { return this.total }
  get size (): number { return this.entries.size }

  /**
   * Takes out the entry sharing the longest prefix with `tokens` (at least minMatch) among those `usable`
   * accepts; ties go to the most recent. Counts a hit or a miss.
   */
  take (tokens: readonly number[], usable: (e: RetainedEntry<T>) => boolean = () => true): PrefixHit<T> | undefined {
    let best: PrefixHit<T> | undefined
    for (const e of this.entries.values()) {
      const common = commonPrefixLength(e.tokens, tokens)
      if (common >= (this.options.minMatch ?? DEFAULT_MIN_MATCH) && (best === undefined || common >= best.common) && usable(e)) best = { entry: e, common }
    }
    if (best === undefined) { this.stats.misses++; return undefined }
    this.remove(best.entry.id)
    this.stats.hits++
    return best
  }

  /** Takes out the entry retained under `id` (stages that follow the first stage's decision). */
  takeById (id: string): RetainedEntry<T> | undefined {
    const e = this.entries.get(id)
    if (e !== undefined) this.remove(id)
    return e
  }

  has (id: string): boolean { return this.entries.has(id) }

  /** Retains `entry` as the most recent; evicts the least recent ones beyond the budget (maybe `entry` itself). */
  put (entry: RetainedEntry<T>): void {
    const old = this.entries.get(entry.id)
    if (old !== undefined) { this.remove(entry.id); this.options.dispose(old.value) }
    this.entries.set(entry.id, entry)
    this.total += entry.bytes
    this.trim()
  }

  /** Evicts least recently used entries until the total fits the budget (minus `reserve` bytes). */
  trim (reserve = 0): void {
    const budget = Math.max(0, this.options.budgetBytes() - reserve)
    const maxEntries = this.options.maxEntries ?? DEFAULT_MAX_ENTRIES
    for (const e of this.entries.values()) {
      if (this.total <= budget && this.entries.size <= maxEntries) return
      this.remove(e.id)
      this.stats.evictions++
      this.options.dispose(e.value)
    }
  }

  /** Disposes every entry. */
  clear (): void {
    for (const e of [...this.entries.values()]) { this.remove(e.id); this.options.dispose(e.value) }
  }

  private remove (id: string): void {
    const e = this.entries.get(id)
    if (e === undefined) return
    this.entries.delete(id)
    this.total -= e.bytes
  }
}
