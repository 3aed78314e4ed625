import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { AbortedError } from '../../shared/errors/exo-error.js'
import { BulkPathError, ProtocolTimeoutError, StreamEndedError, WeightsRequestError } from '../../shared/errors/protocol-errors.js'
import { openRecord, recordLengthValid } from './bulk-crypto.js'
import type { BulkKeys } from './bulk-crypto.js'
import { decodeWeightsFrame } from './codec.js'
import type { WeightsFrame } from './codec.js'
import { BULK_CONNECT_TIMEOUT_MS } from './constants.js'

/** Opens a bulk connection (protocols/weights.md "Bulk path (1.1.0)"); `BulkPathError` ('connect') when it is not up within BULK_CONNECT_TIMEOUT_MS. */
export async function connectBulk (host: string, port: number, signal: AbortSignal): Promise<Socket> {
  return await new Promise<Socket>((resolve, reject) => {
    const sock = connect({ host, port })
    const fail = (err: Error): void => { cleanup(); sock.destroy(); reject(err) }
    const timer = setTimeout(() => { fail(new BulkPathError('connect', `no bulk connection to ${host}:${port} within ${BULK_CONNECT_TIMEOUT_MS} ms`)) }, BULK_CONNECT_TIMEOUT_MS)
    const onError = (err: Error): void => { fail(new BulkPathError('connect', `bulk connection to ${host}:${port}: ${err.message}`, { cause: err })) }
    const onAbort = (): void => { fail(new AbortedError('bulk connect aborted', { cause: signal.reason })) }
    const cleanup = (): void => { clearTimeout(timer); sock.off('error', onError); signal.removeEventListener('abort', onAbort) }
    sock.once('error', onError)
    signal.addEventListener('abort', onAbort, { once: true })
    sock.once('connect', () => { cleanup(); sock.setNoDelay(true); sock.on('error', () => {}); resolve(sock) })
  })
}

/** Records queued (not opened yet) before the socket is paused: backpressure to the holder. */
const MAX_QUEUED_RECORDS = 3

/**
 * Fetcher side of the bulk connection: cuts the byte stream into records, opens each in order (its
 * counter nonce) and decodes the weights frame inside. ERROR frames → `WeightsRequestError`; a record
 * that fails to open, a bad length or a frame other than DATA → `BulkPathError` ('record'); the holder
 * closing before any byte (HELLO refused) → `BulkPathError` ('refused').
 */
export class BulkRecordReader {
  private readonly queue: Buffer[] = []
  private readonly header = Buffer.alloc(4)
  private headerFill = 0
  private current: Buffer | undefined
  private fill = 0
  private received = 0
  private index = 0
  private ended = false
  private failure: Error | undefined
  private wake: (() => void) | undefined

  constructor (private readonly sock: Socket, private readonly keys: BulkKeys) {
    sock.on('data', (d: Buffer) => { this.push(d) })
    sock.on('end', () => { this.ended = true; this.notify() })
    sock.on('close', () => { this.ended = true; this.notify() })
    sock.on('error', (err) => {
      this.failure ??= this.received === 0 ? new BulkPathError('refused', `bulk connection closed before a record: ${err.message}`) : new StreamEndedError(`bulk connection: ${err.message}`)
      this.notify()
    })
  }

  private notify (): void { const w = this.wake; this.wake = undefined; w?.() }

  private push (d: Buffer): void {
    if (this.failure !== undefined) return
    this.received += d.byteLength
    let pos = 0
    while (pos < d.byteLength) {
      if (this.current === undefined) {
        const take = Math.min(4 - this.headerFill, d.byteLength - pos)
        d.copy(this.header, this.headerFill, pos, pos + take)
        this.headerFill += take
        pos += take
        if (this.headerFill < 4) break
        const length = this.header.readUInt32LE(0)
        this.headerFill = 0
        if (!recordLengthValid(length)) {
          this.failure = new BulkPathError('record', `bulk record length ${length} out of bounds`)
          this.sock.destroy()
          break
        }
        this.current = Buffer.allocUnsafe(length)
        this.fill = 0
      }
      const take = Math.min(this.current.byteLength - this.fill, d.byteLength - pos)
      d.copy(this.current, this.fill, pos, pos + take)
      this.fill += take
      pos += take
      if (this.fill === this.current.byteLength) { this.queue.push(this.current); this.current = undefined }
    }
    if (this.queue.length >= MAX_QUEUED_RECORDS) this.sock.pause()
    this.notify()
  }

  /** The next frame of the answer; `undefined` at its end. */
  async next (signal: AbortSignal, timeoutMs: number): Promise<WeightsFrame | undefined> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const rec = this.queue.shift()
      if (rec !== undefined) {
        if (this.queue.length < MAX_QUEUED_RECORDS && this.sock.isPaused()) this.sock.resume()
        return this.decode(openRecord(this.keys, this.index++, rec))
      }
      if (this.failure !== undefined) throw this.failure
      if (this.ended) {
        if (this.received === 0) throw new BulkPathError('refused', 'the holder closed the bulk connection without a record (ticket refused)')
        if (this.current !== undefined || this.headerFill > 0) throw new StreamEndedError('bulk connection ended inside a record')
        return undefined
      }
      if (signal.aborted) throw new AbortedError('bulk read aborted', { cause: signal.reason })
      await new Promise<void>((resolve, reject) => {
        const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', onAbort); this.wake = undefined }
        const onAbort = (): void => { done(); reject(new AbortedError('bulk read aborted', { cause: signal.reason })) }
        const timer = setTimeout(() => { done(); reject(new ProtocolTimeoutError(`no bulk record within ${timeoutMs} ms`)) }, Math.max(0, deadline - Date.now()))
        this.wake = () => { done(); resolve() }
        signal.addEventListener('abort', onAbort, { once: true })
      })
    }
  }

  private decode (plain: Buffer): WeightsFrame {
    if (plain.byteLength < 1) throw new BulkPathError('record', 'an empty bulk record')
    const f = decodeWeightsFrame({ type: plain[0]!, body: plain.subarray(1) })
    if (f.type === 'error') throw new WeightsRequestError(f.code, f.message, true)
    if (f.type !== 'data') throw new BulkPathError('record', `a ${f.type} frame on the bulk connection`)
    return f
  }
}
