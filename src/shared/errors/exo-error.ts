/**
 * Base class of every error exo-p2p raises on purpose. One subclass per failure; callers branch on
 * `instanceof` or `code`, never on message text. Messages carry the numbers that explain the failure.
 */
export abstract class ExoError extends Error {
  /** Stable machine-readable code, e.g. `ENGINE_UNKNOWN_ARCH`. Also used on the wire and in HTTP bodies. */
  abstract readonly code: string

  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortedError extends ExoError {
  readonly code = 'ABORTED'
  constructor (message = 'operation aborted', options?: { cause?: unknown }) { super(message, options) }
}

/** An object was used after `dispose()`/`stop()`. */
export class DisposedError extends ExoError {
  readonly code = 'DISPOSED'
  constructor (what: string) { super(`${what} was already disposed`) }
}

/** Throws `AbortedError` when the signal is aborted. */
export function throwIfAborted (signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new AbortedError('operation aborted', { cause: signal.reason })
}
