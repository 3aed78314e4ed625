import type { Socket } from 'node:net'
import type { Stream } from '@libp2p/interface'
import { ProtocolDecodeError, StreamEndedError } from '../../shared/errors/protocol-errors.js'
import { FramedStream } from '../framed-stream.js'
import { bulkKeys, helloBytes } from './bulk-crypto.js'
import { BulkRecordReader, connectBulk } from './bulk-records.js'
import { receiveBulkInWorker } from './bulk-receiver.js'
import { DATA_IDLE_TIMEOUT_MS, nextFrame, receiveChunks } from './client.js'
import type { OnChunk } from './client.js'
import { encodeWeightsFrame } from './codec.js'
import type { WeightsFrame, WeightsManifest } from './codec.js'
import { MAX_FRAME_BYTES } from './constants.js'
import { chunkCount } from './manifest.js'
import type { ChunkRun } from './manifest.js'

export interface BulkRequestOptions {
  signal: AbortSignal
  /** the holder's IP as the libp2p connection reached it */
  host: string
  /** where to connect for the ticket's port (tests route the connection through a relay). Default: `host`, the ticket's port */
  address?: (host: string, port: number) => { host: string, port: number }
  /**
   * Receive in a worker thread (bulk-receiver.ts), which writes each verified chunk into the file at
   * `path` itself and then calls `onWritten` — instead of handing the pieces to `onChunk`. DATA on the
   * stream (a holder without a bulk listener) still goes to `onChunk`.
   */
  writeTo?: { path: string, onWritten: (index: number) => Promise<void> }
}

/** how long the fetcher waits for the holder to close the stream after the last record */
const CLOSE_WAIT_MS = 5_000

/**
 * `requestChunks` over the bulk path (protocols/weights.md "Bulk path (1.1.0)") on a fresh
 * `/exo-p2p/weights/1.1.0` stream: BULK_RANGE_REQUEST, the ticket, then the DATA frames sealed in
 * records on a TCP connection to the holder — each chunk verified before `onChunk`, as on the stream. A
 * holder without a bulk listener answers with DATA on the stream, which is taken as well. No connection,
 * a refused ticket or a record that fails to open → `BulkPathError` (fall back to `requestChunks`).
 */
export async function requestChunksBulk (stream: Stream, modelId: string, manifest: WeightsManifest, run: ChunkRun,
  onChunk: OnChunk, options: BulkRequestOptions): Promise<void> {
  const { signal } = options
  const framed = new FramedStream(stream, MAX_FRAME_BYTES)
  let sock: Socket | undefined
  try {
    if (run.first + run.count > chunkCount(manifest)) throw new ProtocolDecodeError(`chunks [${run.first}, ${run.first + run.count}) are outside the manifest`)
    await framed.send(encodeWeightsFrame({ type: 'bulk-range-request', modelId, sha256: manifest.sha256, firstChunk: run.first, chunkCount: run.count }), signal)
    await framed.close(signal)
    const first = await nextFrame(framed, signal, DATA_IDLE_TIMEOUT_MS)
    if (first === undefined) throw new StreamEndedError('holder closed the stream without an answer')
    if (first.type !== 'bulk-ticket') {
      // a holder without a bulk listener: the DATA frames on the stream
      let pending: WeightsFrame | undefined = first
      await receiveChunks(async () => {
        const f = pending
        pending = undefined
        return f ?? await nextFrame(framed, signal, DATA_IDLE_TIMEOUT_MS)
      }, modelId, manifest, run, onChunk)
      return
    }
    const to = options.address?.(options.host, first.port) ?? { host: options.host, port: first.port }
    if (options.writeTo !== undefined) {
      await receiveBulkInWorker({ ...to, ticketId: first.ticketId, secret: first.secret, path: options.writeTo.path, modelId, manifest, run }, options.writeTo.onWritten, signal)
    } else {
      const keys = bulkKeys(first.ticketId, first.secret)
      sock = await connectBulk(to.host, to.port, signal)
      const records = new BulkRecordReader(sock, keys)
      sock.write(helloBytes(keys))
      await receiveChunks(async () => await records.next(signal, DATA_IDLE_TIMEOUT_MS), modelId, manifest, run, onChunk)
      sock.destroy()
    }
    // the holder closes the stream once its transfer ended
    const extra = await nextFrame(framed, signal, CLOSE_WAIT_MS)
    if (extra !== undefined) throw new ProtocolDecodeError(`unexpected ${extra.type} frame after the bulk transfer`)
  } catch (err) {
    sock?.destroy()
    framed.abort(err as Error)
    throw err
  }
}
