import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { AbortedError } from '../shared/errors/exo-error.js'
import { ProtocolDecodeError, ProtocolTimeoutError, StreamEndedError } from '../shared/errors/protocol-errors.js'
import { FrameDecoder } from './framing.js'
import type { RawFrame } from './framing.js'

/** Largest yamux window we expect (its auto-tuning ceiling); a paused stream may receive this much. */
const MAX_WINDOW_BYTES = 16 * 1024 * 1024

/**
 * Frames over one libp2p v3 stream (protocols/activations.md "Framing"). Writes wait for the
 * `'drain'` event when `send()` returns false (never `onDrain()`, which stops waiting after the first
 * drain in @libp2p/utils 7.4.1). Reads pause the stream while a whole frame is queued unread, so a
 * slow consumer pushes back on the sender through yamux's window. An oversized or malformed length
 * prefix aborts (resets) the stream: it cannot be resynchronised.
 */
export class FramedStream {
  private readonly decoder: FrameDecoder
  private readonly queue: RawFrame[] = []
  private queuedBytes = 0
  private ended = false
  private failure: Error | undefined
  private wake: (() => void) | undefined

  constructor (readonly stream: Stream, readonly maxInboundFrameBytes: number) {
    this.decoder = new FrameDecoder(maxInboundFrameBytes)
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, maxInboundFrameBytes + MAX_WINDOW_BYTES)
    stream.addEventListener('message', (e) => { this.onData(e.data) })
    stream.addEventListener('end', () => { this.ended = true; this.notify() })
    stream.addEventListener('close', (e) => {
      if (e.error !== undefined && this.failure === undefined) this.failure = new StreamEndedError(`stream ${e.local === true ? 'aborted' : 'reset by the remote'}: ${e.error.message}`, { cause: e.error })
      this.ended = true
      this.notify()
    })
  }

  private onData (data: Uint8Array | Uint8ArrayList): void {
    if (this.failure !== undefined) return
    let frames: RawFrame[]
    try {
      frames = this.decoder.push(data)
    } catch (err) {
      // oversized / zero length prefix: the rest of the stream is unreadable
      this.failure = err as ProtocolDecodeError
      this.stream.abort(err as Error)
      this.notify()
      return
    }
    for (const f of frames) { this.queue.push(f); this.queuedBytes += f.body.byteLength + 5 }
    if (this.queuedBytes >= this.maxInboundFrameBytes && this.stream.readStatus === 'readable') this.stream.pause()
    this.notify()
  }

  private notify (): void {
    const w = this.wake
    this.wake = undefined
    w?.()
  }

  /**
   * The next frame; `undefined` once the remote closed its write end and every frame was read.
   * Throws `ProtocolDecodeError` (bad prefix; the stream is already aborted), `StreamEndedError`
   * (reset), `AbortedError` or `ProtocolTimeoutError` (`timeoutMs`).
   */
  async next (options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<RawFrame | undefined> {
    const { signal, timeoutMs } = options
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs
    for (;;) {
      const f = this.queue.shift()
      if (f !== undefined) {
        this.queuedBytes -= f.body.byteLength + 5
        if (this.queue.length === 0 && this.stream.readStatus === 'paused') this.stream.resume()
        return f
      }
      if (this.failure !== undefined) throw this.failure
      if (this.ended) {
        if (this.decoder.bufferedBytes > 0) throw new ProtocolDecodeError(`stream ended inside a frame (${this.decoder.bufferedBytes} bytes buffered)`)
        return undefined
      }
      if (signal?.aborted === true) throw new AbortedError('read aborted', { cause: signal.reason })
      await new Promise<void>((resolve, reject) => {
        let timer: ReturnType<typeof setTimeout> | undefined
        const onAbort = (): void => { done(); reject(new AbortedError('read aborted', { cause: signal?.reason })) }
        const done = (): void => { signal?.removeEventListener('abort', onAbort); if (timer !== undefined) clearTimeout(timer); this.wake = undefined }
        this.wake = () => { done(); resolve() }
        signal?.addEventListener('abort', onAbort, { once: true })
        if (deadline !== undefined) timer = setTimeout(() => { done(); reject(new ProtocolTimeoutError(`no frame within ${timeoutMs} ms`)) }, Math.max(0, deadline - Date.now()))
      })
    }
  }

  /** Sends one encoded frame, then waits for `'drain'` if the stream's buffer is full. */
  async send (bytes: Uint8Array | Uint8ArrayList, signal?: AbortSignal): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    if (this.stream.writableNeedsDrain) await this.waitDrain(signal)
    let ok: boolean
    try {
      ok = this.stream.send(bytes)
    } catch (err) {
      throw new StreamEndedError(`cannot send: ${(err as Error).message}`, { cause: err })
    }
    if (!ok) await this.waitDrain(signal)
  }

  private async waitDrain (signal?: AbortSignal): Promise<void> {
    if (!this.stream.writableNeedsDrain) return
    const s = this.stream
    await new Promise<void>((resolve, reject) => {
      const done = (): void => { s.removeEventListener('drain', onDrain); s.removeEventListener('close', onClose); signal?.removeEventListener('abort', onAbort) }
      const onDrain = (): void => { done(); resolve() }
      const onClose = (): void => { done(); reject(this.failure ?? new StreamEndedError('stream closed while waiting to send')) }
      const onAbort = (): void => { done(); reject(new AbortedError('send aborted', { cause: signal?.reason })) }
      s.addEventListener('drain', onDrain)
      s.addEventListener('close', onClose)
      signal?.addEventListener('abort', onAbort, { once: true })
      if (signal?.aborted === true) onAbort()
    })
  }

  /** Half-closes our write end (graceful). Never throws: a stream that is already gone is closed. */
  async close (signal?: AbortSignal): Promise<void> {
    try {
      await this.stream.close({ signal })
    } catch {
      // the stream was reset or aborted meanwhile: nothing left to close
    }
  }

  /** Resets the stream (both directions); the remote sees a reset. */
  abort (err: Error): void {
    if (this.stream.status === 'open' || this.stream.status === 'closing') this.stream.abort(err)
  }

  /** True once the stream is gone (closed by both ends, reset or aborted). */
  get isClosed (): boolean { return this.stream.status !== 'open' && this.stream.status !== 'closing' }
}
