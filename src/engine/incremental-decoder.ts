/**
 * Turns a stream of token ids into text deltas, UTF-8 safe: a character whose bytes are split across
 * tokens (byte-fallback tokens `<0xE2>` `<0x82>` `<0xAC>`) is emitted once, when complete. Pure: the
 * tokenizer's detokenize function is injected.
 */
export type DetokenizeFn = (tokens: readonly number[], context: readonly number[]) => string

export interface IncrementalDecoderOptions {
  /** Tokens that precede the first pushed one (e.g. the prompt's tail), used for leading-space rules. */
  context?: readonly number[]
  /** How many preceding tokens to pass as context. Default 8. */
  contextTokens?: number
  /** Give up waiting for a character to complete after this many pending tokens (invalid UTF-8). Default 8. */
  maxPending?: number
}

const REPLACEMENT = '\uFFFD'

export class IncrementalDecoder {
  private context: number[]
  private pending: number[] = []
  private readonly contextTokens: number
  private readonly maxPending: number

  constructor (private readonly detokenize: DetokenizeFn, options: IncrementalDecoderOptions = {}) {
    this.contextTokens = options.contextTokens ?? 8
    this.maxPending = options.maxPending ?? 8
    this.context = (options.context ?? []).slice(-this.contextTokens)
  }

  /** Adds one token; returns the text that is now complete ('' while a character is incomplete). */
  push (token: number): string {
    this.pending.push(token)
    const text = this.detokenize(this.pending, this.context)
    if (text.endsWith(REPLACEMENT) && this.pending.length < this.maxPending) return ''
    this.commit()
    return text
  }

  /** Emits whatever is pending (incomplete characters become U+FFFD). */
  flush (): string {
    if (this.pending.length === 0) return ''
    const text = this.detokenize(this.pending, this.context)
    this.commit()
    return text
  }

  private commit (): void {
    this.context = [...this.context, ...this.pending].slice(-this.contextTokens)
    this.pending = []
  }
}
