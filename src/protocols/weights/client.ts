import { createHash } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { ChunkVerificationError, ProtocolDecodeError, StreamEndedError, WeightsRequestError } from '../../shared/errors/protocol-errors.js'
import { FramedStream } from '../framed-stream.js'
import { decodeWeightsFrame, encodeWeightsFrame } from './codec.js'
import type { WeightsFrame, WeightsManifest } from './codec.js'
import { MANIFEST_DEADLINE_MS, MAX_FRAME_BYTES } from './constants.js'
import { bytesEqual, chunkCount, chunkSpan } from './manifest.js'
import type { ChunkRun } from './manifest.js'

/** Fetcher side of protocols/weights.md: one request per stream. */

/** how long a fetcher waits for the next DATA frame of a range before it gives the holder up */
export const DATA_IDLE_TIMEOUT_MS = 30_000

export async function nextFrame (framed: FramedStream, signal: AbortSignal, timeoutMs: number): Promise<WeightsFrame | undefined> {
  const raw = await framed.next({ signal, timeoutMs })
  if (raw === undefined) return undefined
  const f = decodeWeightsFrame(raw)
  if (f.type === 'error') throw new WeightsRequestError(f.code, f.message, true)
  return f
}

/** Asks for the manifest of `modelId` on a fresh stream; the stream is closed or reset afterwards. */
export async function requestManifest (stream: Stream, modelId: string, options: { signal: AbortSignal, timeoutMs?: number }): Promise<WeightsManifest> {
  const framed = new FramedStream(stream, MAX_FRAME_BYTES)
  try {
    await framed.send(encodeWeightsFrame({ type: 'manifest-request', modelId }), options.signal)
    await framed.close(options.signal)
    const f = await nextFrame(framed, options.signal, options.timeoutMs ?? MANIFEST_DEADLINE_MS)
    if (f === undefined) throw new StreamEndedError('holder closed the stream without a manifest')
    if (f.type !== 'manifest') throw new ProtocolDecodeError(`expected MANIFEST, got ${f.type}`)
    return f.manifest
  } catch (err) {
    framed.abort(err as Error)
    throw err
  }
}

/** Hands each verified chunk of a range to the caller: `(index, pieces)`, awaited in order. */
export type OnChunk = (index: number, pieces: Uint8Array[]) => Promise<void>

/**
 * Fetches the chunks of `run` on a fresh stream and hands each to `onChunk` only once it is complete
 * and matches the manifest's SHA-256 — in order, awaiting each (the holder waits meanwhile: yamux
 * backpressure). A chunk comes as its pieces, in order (not copied into one buffer); each piece is
 * hashed as it arrives. A chunk that fails verification → `ChunkVerificationError` (the stream is
 * reset); the chunks handed over before it stay valid. Pieces out of order → `ProtocolDecodeError`.
 */
export async function requestChunks (stream: Stream, modelId: string, manifest: WeightsManifest, run: ChunkRun,
  onChunk: OnChunk, options: { signal: AbortSignal }): Promise<void> {
  const framed = new FramedStream(stream, MAX_FRAME_BYTES)
  try {
    if (run.first + run.count > chunkCount(manifest)) throw new ProtocolDecodeError(`chunks [${run.first}, ${run.first + run.count}) are outside the manifest`)
    await framed.send(encodeWeightsFrame({ type: 'range-request', modelId, sha256: manifest.sha256, firstChunk: run.first, chunkCount: run.count }), options.signal)
    await framed.close(options.signal)
    await receiveChunks(async () => await nextFrame(framed, options.signal, DATA_IDLE_TIMEOUT_MS), modelId, manifest, run, onChunk)
  } catch (err) {
    framed.abort(err as Error)
    throw err
  }
}

/**
 * The answer to a range request, from `next` (frames of the stream, or of the bulk connection; ERROR
 * frames already thrown as `WeightsRequestError`): DATA pieces in order, each chunk verified before
 * `onChunk`, then the end of the answer.
 */
export async function receiveChunks (next: () => Promise<WeightsFrame | undefined>, modelId: string, manifest: WeightsManifest, run: ChunkRun, onChunk: OnChunk): Promise<void> {
  for (let c = run.first; c < run.first + run.count; c++) {
    const { start, end } = chunkSpan(manifest, c)
    const size = end - start
    const hash = createHash('sha256')
    const pieces: Uint8Array[] = []
    let filled = 0
    while (filled < size) {
      const f = await next()
      if (f === undefined) throw new StreamEndedError(`holder closed the stream inside chunk ${c} (${filled} of ${size} bytes)`)
      if (f.type !== 'data') throw new ProtocolDecodeError(`expected DATA, got ${f.type}`)
      if (f.chunkIndex !== c || f.offset !== filled || filled + f.bytes.byteLength > size) {
        throw new ProtocolDecodeError(`DATA for chunk ${f.chunkIndex} at ${f.offset} (+${f.bytes.byteLength}) where chunk ${c} at ${filled} was due`)
      }
      hash.update(f.bytes)
      pieces.push(f.bytes)
      filled += f.bytes.byteLength
    }
    if (!bytesEqual(hash.digest(), manifest.chunkSha256.subarray(32 * c, 32 * c + 32))) throw new ChunkVerificationError(c, `chunk ${c} of ${modelId} does not match the manifest's sha256`)
    await onChunk(c, pieces)
  }
  const extra = await next()
  if (extra !== undefined) throw new ProtocolDecodeError(`unexpected ${extra.type} frame after the last chunk`)
}
