import type { Connection, Stream, StreamHandler } from '@libp2p/interface'
import { ProtocolDecodeError, WeightsErrorCode, WeightsRequestError } from '../../shared/errors/protocol-errors.js'
import { createLogger } from '../../shared/log.js'
import type { Logger } from '../../shared/log.js'
import { FramedStream } from '../framed-stream.js'
import { dataFrame, decodeWeightsFrame, encodeWeightsFrame } from './codec.js'
import type { RangeRequestFrame, WeightsManifest } from './codec.js'
import { DATA_PIECE_BYTES, MAX_CHUNKS_PER_REQUEST, MAX_FRAME_BYTES, MAX_SERVING_STREAMS, REQUEST_DEADLINE_MS, WEIGHTS_BULK_PROTOCOL } from './constants.js'
import { bytesEqual, chunkCount, chunkSpan } from './manifest.js'
import type { BulkServer } from './bulk-server.js'

/** What the weights handler serves: the node's model files. */
export interface WeightsSource {
  /** The manifest of model `modelId`; throws `WeightsRequestError` UNKNOWN_MODEL when not held. */
  manifest (modelId: string, signal: AbortSignal): Promise<WeightsManifest>
  /**
   * Opens the file of `modelId` for one range request (checked to be the manifest's by the handler):
   * `read(offset, into)` fills `into` with the bytes at `offset` (the handler reads straight into the
   * DATA frame it sends); `close()` when the request ends.
   */
  reader (modelId: string, signal: AbortSignal): Promise<WeightsReader>
}

/** One open file of a WeightsSource. */
export interface WeightsReader {
  read (offset: number, into: Uint8Array): Promise<void>
  close (): Promise<void>
}

export interface WeightsHandlerOptions {
  /** streams served at once; more → BUSY. Default MAX_SERVING_STREAMS */
  maxStreams?: number
  requestDeadlineMs?: number
  log?: Logger
  /**
   * Awaited before each DATA piece of `bytes`: the node slows weight serving down here while it has
   * activation traffic (protocols/weights.md "Priority of activations"). Default: no wait.
   */
  pace?: (bytes: number, signal: AbortSignal) => Promise<void>
  /**
   * The bulk listener that answers BULK_RANGE_REQUEST on `/exo-p2p/weights/1.1.0` (protocols/weights.md
   * "Bulk path (1.1.0)"); the handler closes it in `close()`. Without it (or when it cannot listen),
   * such requests get their DATA on the stream.
   */
  bulk?: BulkServer
}

/** Served requests, for metrics and tests. `bulkRanges`: ranges of `ranges` sent on the bulk path. */
export interface WeightsServeStats { manifests: number, ranges: number, bulkRanges: number, bytes: number, busy: number }

/**
 * Holder side of protocols/weights.md: `libp2p.handle(WEIGHTS_PROTOCOL, handler)`. One request per
 * stream: MANIFEST_REQUEST → MANIFEST, RANGE_REQUEST → DATA pieces; then it closes its write end.
 * Refusals go out as ERROR; malformed input → ERROR MALFORMED and reset. Never throws.
 */
export function createWeightsHandler (source: WeightsSource, options: WeightsHandlerOptions = {}): StreamHandler & { stats: WeightsServeStats, close: () => Promise<void> } {
  const log = options.log ?? createLogger('protocols:weights')
  const maxStreams = options.maxStreams ?? MAX_SERVING_STREAMS
  const deadline = options.requestDeadlineMs ?? REQUEST_DEADLINE_MS
  const stats: WeightsServeStats = { manifests: 0, ranges: 0, bulkRanges: 0, bytes: 0, busy: 0 }
  let active = 0
  const handler = async (stream: Stream, connection: Connection): Promise<void> => {
    const framed = new FramedStream(stream, MAX_FRAME_BYTES)
    const gone = new AbortController()
    const onClose = (): void => { gone.abort(new WeightsRequestError(WeightsErrorCode.Internal, 'stream closed by the fetcher')) }
    stream.addEventListener('close', onClose)
    active++
    try {
      const raw = await framed.next({ signal: gone.signal, timeoutMs: deadline })
      if (raw === undefined) throw new ProtocolDecodeError('stream closed before a request')
      const f = decodeWeightsFrame(raw)
      if (active > maxStreams) {
        stats.busy++
        throw new WeightsRequestError(WeightsErrorCode.Busy, `serving ${active - 1} weight streams already (limit ${maxStreams})`)
      }
      if (f.type === 'manifest-request') {
        const manifest = await source.manifest(f.modelId, gone.signal)
        await framed.send(encodeWeightsFrame({ type: 'manifest', manifest }), gone.signal)
        stats.manifests++
      } else if (f.type === 'range-request') {
        await serveRange(source, f, async (frame, signal) => { await framed.send(frame, signal) }, gone.signal, stats, options.pace)
        stats.ranges++
      } else if (f.type === 'bulk-range-request' && stream.protocol === WEIGHTS_BULK_PROTOCOL) {
        await serveBulk(framed, source, f, gone.signal, stats, options, log)
        stats.ranges++
      } else {
        throw new ProtocolDecodeError(`a ${f.type} frame is not a request`)
      }
      await framed.close()
    } catch (err) {
      if (gone.signal.aborted || framed.isClosed) {
        framed.abort(err as Error)
      } else if (err instanceof WeightsRequestError) {
        log.debug({ err: err.message, remotePeer: connection.remotePeer.toString() }, 'weights request refused')
        await sendError(framed, err.wireCode, err.message)
        await framed.close()
      } else if (err instanceof ProtocolDecodeError) {
        await sendError(framed, WeightsErrorCode.Malformed, err.message)
        framed.abort(err)
      } else {
        log.warn({ err, remotePeer: connection.remotePeer.toString() }, 'weights request failed')
        await sendError(framed, WeightsErrorCode.Internal, (err as Error).message ?? String(err))
        framed.abort(err as Error)
      }
    } finally {
      active--
      stream.removeEventListener('close', onClose)
    }
  }
  return Object.assign(handler, { stats, close: async () => { await options.bulk?.close() } })
}

/** The manifest of a range request's file, after checking the request against it (ERROR codes of RANGE_REQUEST). */
async function checkRange (source: WeightsSource, f: Omit<RangeRequestFrame, 'type'>, signal: AbortSignal): Promise<WeightsManifest> {
  const m = await source.manifest(f.modelId, signal)
  if (!bytesEqual(m.sha256, f.sha256)) throw new WeightsRequestError(WeightsErrorCode.FileChanged, `model ${f.modelId}: this holder's file has another sha256 than the one requested`)
  const n = chunkCount(m)
  if (f.chunkCount < 1 || f.chunkCount > MAX_CHUNKS_PER_REQUEST || f.firstChunk + f.chunkCount > n) {
    throw new WeightsRequestError(WeightsErrorCode.BadRange, `chunks [${f.firstChunk}, ${f.firstChunk + f.chunkCount}) of a file of ${n} chunks (at most ${MAX_CHUNKS_PER_REQUEST} per request)`)
  }
  return m
}

/**
 * BULK_RANGE_REQUEST: checked like a range request, then a ticket on the stream and the DATA frames on
 * the bulk connection; the stream closes when that transfer ended. No bulk listener → DATA on the stream.
 */
async function serveBulk (framed: FramedStream, source: WeightsSource, f: Omit<RangeRequestFrame, 'type'>, signal: AbortSignal, stats: WeightsServeStats,
  options: WeightsHandlerOptions, log: Logger): Promise<void> {
  await checkRange(source, f, signal)
  const port = await options.bulk?.listen().catch((err: Error) => { log.warn({ err: err.message }, 'weights bulk listener unavailable: serving on the stream'); return undefined })
  if (port === undefined) {
    await serveRange(source, f, async (frame, s) => { await framed.send(frame, s) }, signal, stats, options.pace)
    return
  }
  const ticket = options.bulk!.issue(async (sink, s) => {
    try {
      await serveRange(source, f, sink.send, s, stats, options.pace)
    } catch (err) {
      // a read error after some DATA: an ERROR record, then the holder closes
      if (err instanceof WeightsRequestError && !s.aborted) await sink.send(encodeWeightsFrame({ type: 'error', code: err.wireCode, message: err.message }), s).catch(() => {})
      throw err
    }
  }, signal)
  await framed.send(encodeWeightsFrame({ type: 'bulk-ticket', port, ticketId: ticket.ticketId, secret: ticket.secret }), signal)
  try {
    await ticket.done
    stats.bulkRanges++
  } catch (err) {
    // the fetcher did not come (it fell back) or went away: nothing more to say on the stream
    log.debug({ err: (err as Error).message }, 'weights bulk transfer ended early')
  }
}

async function serveRange (source: WeightsSource, f: Omit<RangeRequestFrame, 'type'>, send: (frame: Uint8Array, signal: AbortSignal) => Promise<void>, signal: AbortSignal,
  stats: WeightsServeStats, pace: WeightsHandlerOptions['pace']): Promise<void> {
  const m = await checkRange(source, f, signal)
  const reader = await source.reader(f.modelId, signal)
  try {
    for (let c = f.firstChunk; c < f.firstChunk + f.chunkCount; c++) {
      const { start, end } = chunkSpan(m, c)
      for (let off = 0; start + off < end; off += DATA_PIECE_BYTES) {
        const len = Math.min(DATA_PIECE_BYTES, end - start - off)
        if (pace !== undefined) await pace(len, signal)
        // the file's bytes go straight into the frame: one buffer, no copy
        const frame = dataFrame(c, off, len)
        await reader.read(start + off, frame.piece)
        await send(frame.bytes, signal)
        stats.bytes += len
      }
    }
  } finally {
    await reader.close()
  }
}

async function sendError (framed: FramedStream, code: WeightsErrorCode, message: string): Promise<void> {
  try {
    await framed.send(encodeWeightsFrame({ type: 'error', code, message }), AbortSignal.timeout(5000))
  } catch {
    // the fetcher is gone
  }
}
