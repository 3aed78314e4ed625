import { AbortedError } from '../shared/errors/exo-error.js'
import { ServerBusyError } from '../shared/errors/generation-errors.js'

/** What /metrics shows of a gate. */
export interface AdmissionStats {
  limit: number
  /** KV bytes running sequences may hold together (Infinity: no budget) */
  capacityBytes: number
  /** KV bytes the running sequences hold */
  usedBytes: number
  maxQueue: number
  running: number
  queued: number
  admitted: number
  rejected: number
}

export interface AdmissionGateOptions {
  /** sequences that may run at once (re-read on every admission: it follows the memory left) */
  limit: () => number
  /** requests that may wait for a slot beyond that; more → ServerBusyError (HTTP 429) */
  maxQueue: () => number
  /** KV bytes running sequences may hold together; a sequence is admitted when its cost fits (or none runs). Default: no bound */
  capacityBytes?: () => number
  /** clock (ms) for the Retry-After estimate; default performance.now */
  now?: () => number
}

interface Waiter { resolve: () => void, cost: number }

/** Hard cap on a derived sequence limit (and the default without a memory budget: the stages' old cap). */
export const MAX_SEQUENCES = 64
export const DEFAULT_SEQUENCES = 16

/**
 * Sequences a node can run at once: the KV memory its budget leaves (`freeBytes`) in caches of `perSequenceBytes`
 * (the smallest session: 256 cells), plus `reserved` ones; at least 1, at most MAX_SEQUENCES. Each sequence is
 * then admitted by its own KV bytes (AdmissionGate capacityBytes).
 */
export function maxSequencesFor (freeBytes: number, perSequenceBytes: number, reserved = 0): number {
  if (!(perSequenceBytes > 0)) return MAX_SEQUENCES
  return Math.min(MAX_SEQUENCES, Math.max(1, reserved + Math.floor(Math.max(0, freeBytes) / perSequenceBytes)))
}

/** Retry-After bounds (seconds) */
const MIN_RETRY_S = 1
const MAX_RETRY_S = 60

/**
 * Admission of generation requests on the node that runs their sequences (issue 12 point 5): at most `limit`
 * run at once, and only while their KV bytes fit `capacityBytes` (one always may), at most `maxQueue` wait in FIFO order for a slot (a waiter whose signal aborts — the client went
 * away — leaves the queue), the rest are refused at once with ServerBusyError, whose Retry-After is the time
 * the queue ahead should take to drain at the mean hold time seen so far. Pure: no I/O.
 */
export class AdmissionGate {
  private running = 0
  private used = 0
  private readonly queue: Waiter[] = []
  private admitted = 0
  private rejected = 0
  /** mean ms a slot is held (exponentially weighted) */
  private meanHoldMs = 0

  constructor (private readonly options: AdmissionGateOptions) {}

  get stats (): AdmissionStats {
    return { limit: this.limit(), capacityBytes: this.capacity(), usedBytes: this.used, maxQueue: Math.max(0, this.options.maxQueue()), running: this.running, queued: this.queue.length, admitted: this.admitted, rejected: this.rejected }
  }

  private capacity (): number { return this.options.capacityBytes?.() ?? Number.POSITIVE_INFINITY }
  /** a sequence of `cost` bytes may start now */
  private fits (cost: number): boolean { return this.running < this.limit() && (this.running === 0 || this.used + cost <= this.capacity()) }

  private limit (): number { return Math.max(1, Math.floor(this.options.limit())) }
  private now (): number { return this.options.now !== undefined ? this.options.now() : performance.now() }

  /** Seconds until a slot should be free for a request arriving now. */
  retryAfterSeconds (): number {
    const ahead = this.queue.length + 1
    const s = Math.ceil((this.meanHoldMs / 1000) * ahead / this.limit())
    return Math.min(MAX_RETRY_S, Math.max(MIN_RETRY_S, s))
  }

  /** Waits for a slot for a sequence holding `cost` KV bytes; resolves to its release (call it once, when the sequence ends). */
  async acquire (signal: AbortSignal, cost = 0): Promise<() => void> {
    if (signal.aborted) throw new AbortedError('request cancelled while waiting for admission', { cause: signal.reason })
    if (!this.fits(cost) || this.queue.length > 0) {
      if (this.queue.length >= Math.max(0, this.options.maxQueue())) {
        this.rejected++
        throw new ServerBusyError(this.running, this.queue.length, this.retryAfterSeconds())
      }
      await new Promise<void>((resolve, reject) => {
        const w: Waiter = {
          resolve: () => { signal.removeEventListener('abort', onAbort); resolve() },
          cost
        }
        const onAbort = (): void => {
          const i = this.queue.indexOf(w)
          if (i >= 0) this.queue.splice(i, 1)
          reject(new AbortedError('request cancelled while waiting for admission', { cause: signal.reason }))
        }
        signal.addEventListener('abort', onAbort, { once: true })
        this.queue.push(w)
        this.pump()
      })
    } else {
      this.running++
      this.used += cost
    }
    this.admitted++
    const t0 = this.now()
    let released = false
    return () => {
      if (released) return
      released = true
      const held = this.now() - t0
      this.meanHoldMs = this.meanHoldMs === 0 ? held : 0.8 * this.meanHoldMs + 0.2 * held
      this.running--
      this.used -= cost
      this.pump()
    }
  }

  /** Hands free slots to the oldest waiters (the limit may have grown, too). */
  pump (): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.cost)) {
      const w = this.queue.shift()!
      this.running++
      this.used += w.cost
      w.resolve()
    }
  }
}
