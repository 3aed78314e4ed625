/**
 * Stop strings over streamed text (pure). Text is released only when it can no longer be part of a stop
 * string: a tail that is a prefix of some stop string is held back until the next chunk decides it.
 * On a match the text before the stop string is released and the stop string itself is never emitted.
 */
export interface StopPush {
  /** text safe to emit now */
  text: string
  /** a stop string matched: emit `text`, then end the generation */
  stopped: boolean
  /** which stop string matched (when `stopped`) */
  matched?: string
}

export class StopStringMatcher {
  private readonly stops: string[]
  private held = ''

  constructor (stops: readonly string[]) {
    this.stops = [...new Set(stops.filter((s) => s.length > 0))]
  }

  push (chunk: string): StopPush {
    const buffer = this.held + chunk
    let first = -1
    let matched = ''
    for (const s of this.stops) {
      const i = buffer.indexOf(s)
      if (i !== -1 && (first === -1 || i < first)) { first = i; matched = s }
    }
    if (first !== -1) {
      this.held = ''
      return { text: buffer.slice(0, first), stopped: true, matched }
    }
    const keep = this.pendingPrefixLength(buffer)
    this.held = buffer.slice(buffer.length - keep)
    return { text: buffer.slice(0, buffer.length - keep), stopped: false }
  }

  /** Releases the held-back tail (the generation ended without completing a stop string). */
  flush (): string {
    const text = this.held
    this.held = ''
    return text
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of a stop string. */
  private pendingPrefixLength (buffer: string): number {
    let best = 0
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buffer.length); n > best; n--) {
        if (buffer.endsWith(s.slice(0, n))) { best = n; break }
      }
    }
    return best
  }
}
