/**
 * Token buckets keyed by peer id (protocols/membership.md "Rate limits"). Pure: no clock inside, every
 * call takes `now` (ms, the caller's monotonic clock).
 *
 * A bucket holds at most `burst` tokens and gains `perSecond` tokens a second; a message costs one.
 * Buckets that refilled completely are forgotten (`take` and `waitMs` treat an unknown key as a full
 * bucket), and the map never holds more than `maxKeys` buckets: when it would, full buckets go first,
 * then the least recently used.
 */
export interface RateLimit {
  /** tokens a full bucket holds: the longest burst allowed */
  readonly burst: number
  /** tokens gained per second: the sustained rate allowed */
  readonly perSecond: number
}

interface Bucket { tokens: number, at: number }

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>()

  constructor (readonly limit: RateLimit, private readonly maxKeys = 4096) {
    if (!(limit.burst >= 1) || !(limit.perSecond > 0)) throw new RangeError(`bad rate limit ${JSON.stringify(limit)}`)
  }

  private level (key: string, now: number): number {
    const b = this.buckets.get(key)
    if (b === undefined) return this.limit.burst
    return Math.min(this.limit.burst, b.tokens + Math.max(0, now - b.at) * this.limit.perSecond / 1000)
  }

  /** Takes one token for `key` if there is one; false = over the limit (nothing taken). */
  take (key: string, now: number): boolean {
    const tokens = this.level(key, now)
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: now })
      return false
    }
    this.buckets.delete(key) // re-insert: the map stays ordered by last use
    this.buckets.set(key, { tokens: tokens - 1, at: now })
    this.evict(now)
    return true
  }

  /** ms until `take(key)` would succeed (0 = now). */
  waitMs (key: string, now: number): number {
    const missing = 1 - this.level(key, now)
    return missing <= 0 ? 0 : Math.ceil(missing * 1000 / this.limit.perSecond)
  }

  /** Buckets held (for tests and bounds). */
  get size (): number { return this.buckets.size }

  private evict (now: number): void {
    if (this.buckets.size <= this.maxKeys) return
    for (const [key, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.limit.perSecond / 1000 >= this.limit.burst) this.buckets.delete(key)
    }
    // all busy: drop the least recently used (it loses at most its debt)
    while (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value
      if (oldest === undefined) break
      this.buckets.delete(oldest)
    }
  }
}
