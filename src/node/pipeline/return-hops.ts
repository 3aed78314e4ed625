import { AbortedError } from '../../shared/errors/exo-error.js'
import { ActivationErrorCode, ActivationStageError, ProtocolDecodeError } from '../../shared/errors/protocol-errors.js'
import type { PlanId, RequestId } from '../../shared/ids.js'
import type { ActivationsPort, OpenFrame, ResultFrame } from '../../protocols/activations/index.js'
import type { HopChannel } from './stage-runner.js'

/** What stage 0 reads for one request: sampled tokens in order, then `undefined` at END. */
export interface ReturnHop {
  /** Next RESULT; `undefined` once END arrived. Throws the hop's failure (ActivationStageError, reset, abort). */
  next (signal?: AbortSignal): Promise<ResultFrame | undefined>
  /** Stop waiting (request over or cancelled): frees the registration and resets the hop if open. */
  release (): void
}

interface Waiter {
  queue: Array<ResultFrame | undefined>
  failure: unknown
  wake: (() => void) | undefined
  channel: HopChannel | undefined
}

/**
 * Stage 0's side of the ring's last hop (last stage → stage 0, protocols/activations.md). The
 * driver of a request calls `expect(requestId)` BEFORE sending its OPEN downstream, then reads the
 * sampled tokens from the returned hop. Inbound return hops for an unknown request, another plan or
 * a stage index ≠ 0 are refused.
 */
export class ReturnHops implements ActivationsPort {
  private readonly waiters = new Map<string, Waiter>()

  constructor (readonly planId: PlanId) {}

  expect (requestId: RequestId): ReturnHop {
    if (this.waiters.has(requestId)) throw new ActivationStageError(ActivationErrorCode.DuplicateRequest, `request ${requestId} is already waiting for results`)
    const w: Waiter = { queue: [], failure: undefined, wake: undefined, channel: undefined }
    this.waiters.set(requestId, w)
    return {
      next: async (signal) => {
        for (;;) {
          if (w.queue.length > 0) return w.queue.shift()
          if (w.failure !== undefined) throw w.failure
          if (signal?.aborted === true) throw new AbortedError('waiting for a result aborted', { cause: signal.reason })
          await new Promise<void>((resolve) => {
            const onAbort = (): void => { w.wake = undefined; resolve() }
            w.wake = () => { signal?.removeEventListener('abort', onAbort); w.wake = undefined; resolve() }
            signal?.addEventListener('abort', onAbort, { once: true })
          })
        }
      },
      release: () => {
        if (this.waiters.get(requestId) === w) this.waiters.delete(requestId)
        w.channel?.abort(new AbortedError(`request ${requestId} released`))
        w.failure ??= new AbortedError(`request ${requestId} released`)
        w.wake?.()
      }
    }
  }

  /** requests waiting for results */
  get pending (): number { return this.waiters.size }

  async serve (open: OpenFrame, channel: HopChannel, context: { signal: AbortSignal }): Promise<void> {
    if (open.planId !== this.planId) throw new ActivationStageError(ActivationErrorCode.PlanMismatch, `plan ${open.planId.slice(0, 12)}… is not held; stage 0 serves ${this.planId.slice(0, 12)}…`)
    if (open.toStage !== 0) throw new ActivationStageError(ActivationErrorCode.StageMismatch, `OPEN for stage ${open.toStage}, this node is stage 0`)
    const w = this.waiters.get(open.requestId)
    if (w === undefined || w.channel !== undefined) throw new ActivationStageError(ActivationErrorCode.Internal, `no request ${open.requestId} is waiting for a return hop`)
    w.channel = channel
    try {
      for (;;) {
        const f = await channel.next({ signal: context.signal })
        if (f === undefined) throw new AbortedError(`return hop of ${open.requestId} closed without END`)
        if (f.type === 'end') { w.queue.push(undefined); break }
        if (f.type !== 'result') throw new ProtocolDecodeError(`${f.type.toUpperCase()} on the return hop`)
        w.queue.push(f)
        w.wake?.()
      }
    } catch (err) {
      w.failure ??= err
      throw err
    } finally {
      w.wake?.()
    }
  }
}
