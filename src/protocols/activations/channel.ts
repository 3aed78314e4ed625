import type { Stream } from '@libp2p/interface'
import { ActivationErrorCode, ActivationStageError, ProtocolDecodeError } from '../../shared/errors/protocol-errors.js'
import { FramedStream } from '../framed-stream.js'
import { decodeActivationFrame, encodeActivationFrame, encodeRequestHeader } from './codec.js'
import type { EndFrame, HiddenFrame, KnownRequestHeader, OpenFrame, ResultFrame } from './codec.js'
import { MAX_FRAME_BYTES } from './constants.js'

/** The frames that follow OPEN on a hop. */
export type PayloadFrame = HiddenFrame | ResultFrame | EndFrame

/**
 * One hop of one request (protocols/activations.md): a stream whose OPEN has been sent (dialer) or
 * received (listener). Frames it sends are checked against the OPEN; frames it receives too.
 */
export class ActivationChannel {
  /** this stream's request header, encoded and validated once (every frame carries it) */
  private readonly header: KnownRequestHeader

  constructor (private readonly framed: FramedStream, readonly open: OpenFrame) {
    const ids = { requestId: open.requestId, planId: open.planId }
    this.header = { bytes: encodeRequestHeader(ids), ids }
  }

  /** Dialer side: sends OPEN on a freshly dialed stream (`dialProtocol(next, ACTIVATIONS_PROTOCOL)`). */
  static async dial (stream: Stream, open: OpenFrame, options: { signal?: AbortSignal } = {}): Promise<ActivationChannel> {
    const framed = new FramedStream(stream, MAX_FRAME_BYTES)
    try {
      await framed.send(encodeActivationFrame(open), options.signal)
    } catch (err) {
      framed.abort(err as Error)
      throw err
    }
    return new ActivationChannel(framed, open)
  }

  get requestId (): string { return this.open.requestId }
  get planId (): string { return this.open.planId }
  get stream (): Stream { return this.framed.stream }
  get isClosed (): boolean { return this.framed.isClosed }

  /** Sends PREFILL / DECODE / RESULT / END, waiting for drain (backpressure). */
  async send (frame: PayloadFrame, signal?: AbortSignal): Promise<void> {
    if (frame.requestId !== this.open.requestId || frame.planId !== this.open.planId) {
      throw new ActivationStageError(ActivationErrorCode.Internal, `frame of ${frame.requestId}/${frame.planId.slice(0, 8)} sent on the stream of ${this.open.requestId}/${this.open.planId.slice(0, 8)}`)
    }
    await this.framed.send(encodeActivationFrame(frame, this.header.bytes), signal)
  }

  /**
   * The next payload frame, or `undefined` when the peer closed its write end. An ERROR frame from
   * the peer throws `ActivationStageError` (remote = true); a frame of another plan throws
   * `ActivationStageError` PLAN_MISMATCH; anything malformed throws `ProtocolDecodeError`.
   */
  async next (options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<PayloadFrame | undefined> {
    const raw = await this.framed.next(options)
    if (raw === undefined) return undefined
    const f = decodeActivationFrame(raw, this.header)
    if (f.type === 'error') throw new ActivationStageError(f.code, f.message, true)
    if (f.type === 'open') throw new ProtocolDecodeError(`second OPEN on the stream of ${this.open.requestId}`)
    if (f.planId !== this.open.planId) throw new ActivationStageError(ActivationErrorCode.PlanMismatch, `frame carries plan ${f.planId.slice(0, 12)}…, the stream was opened for ${this.open.planId.slice(0, 12)}…`)
    if (f.requestId !== this.open.requestId) throw new ProtocolDecodeError(`frame of request ${f.requestId} on the stream of ${this.open.requestId}`)
    return f
  }

  /** Sends ERROR and closes our write end; never throws (the peer may be gone already). */
  async fail (code: ActivationErrorCode, message: string): Promise<void> {
    try {
      await this.framed.send(encodeActivationFrame({ type: 'error', code, message }), AbortSignal.timeout(5000))
    } catch {
      // nobody left to tell
    }
    await this.framed.close(AbortSignal.timeout(5000))
  }

  /** Graceful half-close of our write end. */
  async close (): Promise<void> { await this.framed.close(AbortSignal.timeout(5000)) }

  /** Reset: the peer frees the request (cancellation, failure). */
  abort (err: Error): void { this.framed.abort(err) }
}

/** Internal: wraps a listener-side stream after its OPEN was read. */
export function channelFromFramed (framed: FramedStream, open: OpenFrame): ActivationChannel {
  return new ActivationChannel(framed, open)
}
