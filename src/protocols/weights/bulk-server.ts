import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { AbortedError } from '../../shared/errors/exo-error.js'
import { BulkPathError } from '../../shared/errors/protocol-errors.js'
import { createLogger } from '../../shared/log.js'
import type { Logger } from '../../shared/log.js'
import { bulkKeys, helloValid, newTicket, sealRecord } from './bulk-crypto.js'
import type { BulkKeys } from './bulk-crypto.js'
import { BULK_HELLO_BYTES, MAX_BULK_CONNECTIONS, TICKET_DEADLINE_MS } from './constants.js'
import { FRAME_PREFIX_BYTES } from '../framing.js'

/** Where a bulk transfer writes the frames of its answer (each sealed in one record). */
export interface BulkFrameSink {
  /** Seals one weights frame (given WITH its length prefix, as the codec makes it) and writes it; waits for drain. */
  send (frame: Uint8Array, signal: AbortSignal): Promise<void>
}

/** The work behind a ticket: writes the answer's frames once the fetcher presented the ticket. */
export type BulkJob = (sink: BulkFrameSink, signal: AbortSignal) => Promise<void>

interface Pending { keys: BulkKeys, job: BulkJob, signal: AbortSignal, resolve: () => void, reject: (e: Error) => void, timer: NodeJS.Timeout }

/**
 * Holder side of protocols/weights.md "Bulk path (1.1.0)": one TCP listener (opened on first use) that
 * accepts connections presenting a ticket issued over the libp2p stream, and runs that ticket's job,
 * sealing every frame. Unknown, expired, used tickets and wrong HELLOs get the connection closed with
 * no byte written. `close()` ends the listener and every transfer.
 */
export class BulkServer {
  private server: Server | undefined
  private listening: Promise<number> | undefined
  private readonly pending = new Map<string, Pending>()
  private readonly sockets = new Set<Socket>()
  private readonly log: Logger
  /** connections refused (bad or unknown ticket), for tests */
  refused = 0
  /** bulk connections open now (tests: none linger after their transfer) */
  get connections (): number { return this.sockets.size }

  constructor (private readonly host: string, private readonly port = 0, log?: Logger) {
    this.log = log ?? createLogger('protocols:weights-bulk')
  }

  /** The port the listener is bound to (listens on first call); throws when it cannot listen. */
  async listen (): Promise<number> {
    this.listening ??= new Promise<number>((resolve, reject) => {
      const server = createServer((sock) => { this.accept(sock) })
      server.once('error', reject)
      server.listen(this.port, this.host, () => {
        server.off('error', reject)
        server.on('error', (err) => { this.log.warn({ err: err.message }, 'weights bulk listener error') })
        resolve((server.address() as { port: number }).port)
      })
      this.server = server
    })
    this.listening.catch(() => { this.listening = undefined })
    return await this.listening
  }

  /**
   * A ticket for `job`, valid TICKET_DEADLINE_MS; `done` settles when the job ended (rejects when the
   * ticket expired unused, the job failed, or `signal` — the libp2p stream — went away).
   */
  issue (job: BulkJob, signal: AbortSignal): { ticketId: Uint8Array, secret: Uint8Array, done: Promise<void> } {
    const { ticketId, secret } = newTicket()
    const id = Buffer.from(ticketId).toString('hex')
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new BulkPathError('connect', `bulk ticket not presented within ${TICKET_DEADLINE_MS} ms`))
      }, TICKET_DEADLINE_MS)
      timer.unref()
      this.pending.set(id, { keys: bulkKeys(ticketId, secret), job, signal, resolve, reject, timer })
      signal.addEventListener('abort', () => {
        const p = this.pending.get(id)
        if (p !== undefined) { this.pending.delete(id); clearTimeout(p.timer); reject(new AbortedError('weights stream gone before the bulk connection')) }
      }, { once: true })
    })
    return { ticketId, secret, done }
  }

  private accept (sock: Socket): void {
    // strangers can open connections without a ticket: a bounded number wait for their HELLO
    if (this.sockets.size >= MAX_BULK_CONNECTIONS) { this.refuse(sock); return }
    this.sockets.add(sock)
    sock.setNoDelay(true)
    sock.on('close', () => { this.sockets.delete(sock) })
    sock.on('error', () => {})
    const timer = setTimeout(() => { this.refuse(sock) }, TICKET_DEADLINE_MS)
    let hello = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      hello = Buffer.concat([hello, d])
      if (hello.byteLength < BULK_HELLO_BYTES) return
      sock.off('data', onData)
      sock.pause()
      clearTimeout(timer)
      const id = hello.subarray(0, 16).toString('hex')
      const p = this.pending.get(id)
      // anything after the HELLO is a protocol violation: the fetcher writes nothing else
      if (p === undefined || hello.byteLength !== BULK_HELLO_BYTES || !helloValid(p.keys, hello)) { this.refuse(sock); return }
      this.pending.delete(id)
      clearTimeout(p.timer)
      // read on, to see the fetcher close (and free the connection); it has nothing more to send
      sock.on('data', () => { sock.destroy() })
      sock.resume()
      void this.run(sock, p)
    }
    sock.on('data', onData)
  }

  private refuse (sock: Socket): void {
    this.refused++
    sock.destroy()
  }

  private async run (sock: Socket, p: Pending): Promise<void> {
    const controller = new AbortController()
    const signal = AbortSignal.any([p.signal, controller.signal])
    sock.once('close', () => { controller.abort(new BulkPathError('connect', 'the fetcher closed the bulk connection')) })
    let index = 0
    const sink: BulkFrameSink = {
      send: async (frame, s) => {
        if (signal.aborted || s.aborted) throw new AbortedError('bulk transfer aborted', { cause: signal.reason })
        const [prefix, body, tag] = sealRecord(p.keys, index++, frame.subarray(FRAME_PREFIX_BYTES))
        sock.cork()
        sock.write(prefix!)
        sock.write(body!)
        const ok = sock.write(tag!)
        sock.uncork()
        if (!ok) await drain(sock, AbortSignal.any([signal, s]))
      }
    }
    try {
      await p.job(sink, signal)
      sock.end()
      p.resolve()
    } catch (err) {
      sock.destroy()
      p.reject(err as Error)
    }
  }

  async close (): Promise<void> {
    for (const [id, p] of this.pending) { clearTimeout(p.timer); p.reject(new AbortedError('bulk listener closed')); this.pending.delete(id) }
    for (const s of this.sockets) s.destroy()
    const server = this.server
    this.server = undefined
    this.listening = undefined
    if (server !== undefined) await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  }
}

async function drain (sock: Socket, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => { sock.off('drain', ok); sock.off('close', closed); signal.removeEventListener('abort', aborted); if (err === undefined) resolve(); else reject(err) }
    const ok = (): void => { done() }
    const closed = (): void => { done(new BulkPathError('connect', 'bulk connection closed while sending')) }
    const aborted = (): void => { done(new AbortedError('bulk transfer aborted', { cause: signal.reason })) }
    sock.on('drain', ok)
    sock.on('close', closed)
    signal.addEventListener('abort', aborted, { once: true })
  })
}
