import { ProtocolDecodeError, ProtocolEncodeError, WeightsErrorCode } from '../../shared/errors/protocol-errors.js'
import { BodyReader, decodeUtf8, encodeFrame, encodeUtf8, FRAME_BODY_OFFSET, frameBuffer } from '../framing.js'
import type { RawFrame } from '../framing.js'
import {
  DATA_PIECE_BYTES, MAX_CHUNK_BYTES, MAX_CHUNKS, MAX_CHUNKS_PER_REQUEST, MAX_ERROR_MESSAGE_BYTES, MAX_FRAME_BYTES,
  MAX_MODEL_ID_BYTES, MIN_CHUNK_BYTES, Provenance, WeightsFrameType
} from './constants.js'

/** Pure codec of protocols/weights.md. Decoders throw only `ProtocolDecodeError`. */

/** A file's manifest (protocols/weights.md MANIFEST). */
export interface WeightsManifest {
  fileBytes: number
  /** GGUF data offset: [0, headerBytes) is the header */
  headerBytes: number
  chunkBytes: number
  /** (32) SHA-256 of the whole file */
  sha256: Uint8Array
  provenance: Provenance
  /** (chunkCount × 32) SHA-256 of each chunk, in order */
  chunkSha256: Uint8Array
}

export interface ManifestRequestFrame { type: 'manifest-request', modelId: string }
export interface ManifestFrame { type: 'manifest', manifest: WeightsManifest }
export interface RangeRequestFrame { type: 'range-request', modelId: string, sha256: Uint8Array, firstChunk: number, chunkCount: number }
export interface DataFrame { type: 'data', chunkIndex: number, offset: number, bytes: Uint8Array }
export interface WeightsErrorFrame { type: 'error', code: WeightsErrorCode, message: string }
/** 1.1.0: a range request answered on the bulk path (body as RANGE_REQUEST) */
export interface BulkRangeRequestFrame extends Omit<RangeRequestFrame, 'type'> { type: 'bulk-range-request' }
/** 1.1.0: where and with which keys the holder sends the range (protocols/weights.md "Bulk path (1.1.0)") */
export interface BulkTicketFrame { type: 'bulk-ticket', port: number, /** (16) */ ticketId: Uint8Array, /** (32) */ secret: Uint8Array }
export type WeightsFrame = ManifestRequestFrame | ManifestFrame | RangeRequestFrame | DataFrame | WeightsErrorFrame | BulkRangeRequestFrame | BulkTicketFrame

const MAX_U53 = Number.MAX_SAFE_INTEGER

export function chunkCountOf (fileBytes: number, chunkBytes: number): number {
  return Math.ceil(fileBytes / chunkBytes)
}

function isPowerOfTwo (n: number): boolean { return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0 }

/** Throws `fail(reason)` when a manifest's fields break protocols/weights.md MANIFEST. */
export function validateManifest (m: WeightsManifest, fail: (msg: string) => Error = (msg) => new ProtocolEncodeError(msg)): void {
  if (!Number.isSafeInteger(m.fileBytes) || m.fileBytes < 1) throw fail(`manifest fileBytes ${m.fileBytes} is not an integer ≥ 1`)
  if (!Number.isSafeInteger(m.headerBytes) || m.headerBytes < 1 || m.headerBytes > m.fileBytes) throw fail(`manifest headerBytes ${m.headerBytes} not in [1, ${m.fileBytes}]`)
  if (!isPowerOfTwo(m.chunkBytes) || m.chunkBytes < MIN_CHUNK_BYTES || m.chunkBytes > MAX_CHUNK_BYTES) throw fail(`manifest chunkBytes ${m.chunkBytes} is not a power of two in [${MIN_CHUNK_BYTES}, ${MAX_CHUNK_BYTES}]`)
  if (m.sha256.byteLength !== 32) throw fail(`manifest sha256 has ${m.sha256.byteLength} bytes, not 32`)
  if (m.provenance !== Provenance.Hub && m.provenance !== Provenance.Local) throw fail(`manifest provenance ${String(m.provenance)} is neither 1 (HUB) nor 2 (LOCAL)`)
  const n = chunkCountOf(m.fileBytes, m.chunkBytes)
  if (n > MAX_CHUNKS) throw fail(`manifest of ${n} chunks exceeds ${MAX_CHUNKS}`)
  if (m.chunkSha256.byteLength !== 32 * n) throw fail(`manifest has ${m.chunkSha256.byteLength / 32} chunk hashes for ${n} chunks`)
}

function modelIdBytes (modelId: string): Uint8Array {
  const b = encodeUtf8(modelId)
  if (b.byteLength < 1 || b.byteLength > MAX_MODEL_ID_BYTES) throw new ProtocolEncodeError(`model id of ${b.byteLength} bytes not in [1, ${MAX_MODEL_ID_BYTES}]`)
  return Uint8Array.of(b.byteLength, ...b)
}

function u32 (n: number, what: string): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new ProtocolEncodeError(`${what} ${n} is not a u32`)
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, n, true)
  return b
}

function u64 (n: number): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true)
  return b
}

/** Encodes one frame; throws `ProtocolEncodeError` on values out of range. */
export function encodeWeightsFrame (f: WeightsFrame): Uint8Array {
  switch (f.type) {
    case 'manifest-request':
      return encodeFrame(WeightsFrameType.ManifestRequest, [modelIdBytes(f.modelId)], MAX_FRAME_BYTES)
    case 'manifest': {
      const m = f.manifest
      validateManifest(m)
      return encodeFrame(WeightsFrameType.Manifest, [u64(m.fileBytes), u64(m.headerBytes), u32(m.chunkBytes, 'chunkBytes'), m.sha256,
        Uint8Array.of(m.provenance), u32(m.chunkSha256.byteLength / 32, 'chunkCount'), m.chunkSha256], MAX_FRAME_BYTES)
    }
    case 'range-request':
    case 'bulk-range-request':
      if (f.sha256.byteLength !== 32) throw new ProtocolEncodeError('range request sha256 must have 32 bytes')
      if (!Number.isInteger(f.chunkCount) || f.chunkCount < 1 || f.chunkCount > MAX_CHUNKS_PER_REQUEST) throw new ProtocolEncodeError(`range request of ${f.chunkCount} chunks not in [1, ${MAX_CHUNKS_PER_REQUEST}]`)
      return encodeFrame(f.type === 'range-request' ? WeightsFrameType.RangeRequest : WeightsFrameType.BulkRangeRequest,
        [modelIdBytes(f.modelId), f.sha256, u32(f.firstChunk, 'firstChunk'), u32(f.chunkCount, 'chunkCount')], MAX_FRAME_BYTES)
    case 'bulk-ticket': {
      if (!Number.isInteger(f.port) || f.port < 1 || f.port > 0xffff) throw new ProtocolEncodeError(`bulk port ${f.port} is not a u16 ≥ 1`)
      if (f.ticketId.byteLength !== 16 || f.secret.byteLength !== 32) throw new ProtocolEncodeError('a bulk ticket has a 16-byte id and a 32-byte secret')
      const port = new Uint8Array(2)
      new DataView(port.buffer).setUint16(0, f.port, true)
      return encodeFrame(WeightsFrameType.BulkTicket, [port, f.ticketId, f.secret], MAX_FRAME_BYTES)
    }
    case 'data': {
      // one buffer per frame (framing.ts): header fields then the piece
      const out = dataFrame(f.chunkIndex, f.offset, f.bytes.byteLength)
      out.piece.set(f.bytes)
      return out.bytes
    }
    case 'error': {
      let msg = encodeUtf8(f.message)
      if (msg.byteLength > MAX_ERROR_MESSAGE_BYTES) msg = encodeUtf8(truncateUtf8(f.message, MAX_ERROR_MESSAGE_BYTES))
      const head = new Uint8Array(4)
      const view = new DataView(head.buffer)
      view.setUint16(0, f.code, true)
      view.setUint16(2, msg.byteLength, true)
      return encodeFrame(WeightsFrameType.Error, [head, msg], MAX_FRAME_BYTES)
    }
  }
}

/**
 * A DATA frame of `length` piece bytes with its header written; the caller fills `piece` (a view into
 * `bytes`) and sends `bytes` — the holder reads the file straight into it.
 */
export function dataFrame (chunkIndex: number, offset: number, length: number): { bytes: Uint8Array, piece: Uint8Array } {
  if (!Number.isInteger(length) || length < 1 || length > DATA_PIECE_BYTES) throw new ProtocolEncodeError(`data piece of ${length} bytes not in [1, ${DATA_PIECE_BYTES}]`)
  const bytes = frameBuffer(WeightsFrameType.Data, 8 + length, MAX_FRAME_BYTES)
  const view = new DataView(bytes.buffer)
  view.setUint32(FRAME_BODY_OFFSET, checkU32(chunkIndex, 'chunkIndex'), true)
  view.setUint32(FRAME_BODY_OFFSET + 4, checkU32(offset, 'offset'), true)
  return { bytes, piece: bytes.subarray(FRAME_BODY_OFFSET + 8) }
}

function checkU32 (n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new ProtocolEncodeError(`${what} ${n} is not a u32`)
  return n
}

/** The longest prefix of `s` whose UTF-8 fits `maxBytes` (no split characters). */
function truncateUtf8 (s: string, maxBytes: number): string {
  const cut = new TextDecoder('utf-8').decode(encodeUtf8(s).subarray(0, maxBytes))
  return cut.endsWith('\uFFFD') ? cut.slice(0, -1) : cut
}

function readModelId (r: BodyReader): string {
  const n = r.u8('modelIdLength')
  if (n < 1 || n > MAX_MODEL_ID_BYTES) throw new ProtocolDecodeError(`model id length ${n} not in [1, ${MAX_MODEL_ID_BYTES}]`)
  return decodeUtf8(r.bytes(n, 'modelId'), 'modelId')
}

function readU64 (r: BodyReader, field: string): number {
  const b = r.bytes(8, field)
  const v = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true)
  if (v > BigInt(MAX_U53)) throw new ProtocolDecodeError(`${field} ${v} is ≥ 2^53`)
  return Number(v)
}

/** Decodes one frame read off the wire; throws `ProtocolDecodeError` on anything protocols/weights.md forbids. */
export function decodeWeightsFrame (raw: RawFrame): WeightsFrame {
  const r = new BodyReader(raw.body, `weights frame type ${raw.type}`)
  switch (raw.type) {
    case WeightsFrameType.ManifestRequest: {
      const modelId = readModelId(r)
      r.end()
      return { type: 'manifest-request', modelId }
    }
    case WeightsFrameType.Manifest: {
      const fileBytes = readU64(r, 'fileBytes')
      const headerBytes = readU64(r, 'headerBytes')
      const chunkBytes = r.u32('chunkBytes')
      const sha256 = r.bytes(32, 'sha256')
      const provenance = r.u8('provenance') as Provenance
      const chunkCount = r.u32('chunkCount')
      if (chunkCount > MAX_CHUNKS) throw new ProtocolDecodeError(`manifest chunkCount ${chunkCount} exceeds ${MAX_CHUNKS}`)
      const chunkSha256 = r.bytes(32 * chunkCount, 'chunkSha256')
      r.end()
      const manifest: WeightsManifest = { fileBytes, headerBytes, chunkBytes, sha256, provenance, chunkSha256 }
      validateManifest(manifest, (msg) => new ProtocolDecodeError(msg))
      return { type: 'manifest', manifest }
    }
    case WeightsFrameType.RangeRequest:
    case WeightsFrameType.BulkRangeRequest: {
      const modelId = readModelId(r)
      const sha256 = r.bytes(32, 'sha256')
      const firstChunk = r.u32('firstChunk')
      const chunkCount = r.u32('chunkCount')
      r.end()
      return { type: raw.type === WeightsFrameType.RangeRequest ? 'range-request' : 'bulk-range-request', modelId, sha256, firstChunk, chunkCount }
    }
    case WeightsFrameType.BulkTicket: {
      const port = r.u16('port')
      if (port < 1) throw new ProtocolDecodeError('bulk port 0')
      const ticketId = r.bytes(16, 'ticketId')
      const secret = r.bytes(32, 'secret')
      r.end()
      return { type: 'bulk-ticket', port, ticketId, secret }
    }
    case WeightsFrameType.Data: {
      const chunkIndex = r.u32('chunkIndex')
      const offset = r.u32('offset')
      const bytes = r.rest()
      if (bytes.byteLength < 1 || bytes.byteLength > DATA_PIECE_BYTES) throw new ProtocolDecodeError(`data piece of ${bytes.byteLength} bytes not in [1, ${DATA_PIECE_BYTES}]`)
      return { type: 'data', chunkIndex, offset, bytes }
    }
    case WeightsFrameType.Error: {
      const code = r.u16('code')
      const n = r.u16('messageLength')
      if (n > MAX_ERROR_MESSAGE_BYTES) throw new ProtocolDecodeError(`error message of ${n} bytes exceeds ${MAX_ERROR_MESSAGE_BYTES}`)
      const message = decodeUtf8(r.bytes(n, 'message'), 'message')
      r.end()
      const known = Object.values(WeightsErrorCode).includes(code)
      return { type: 'error', code: known ? code as WeightsErrorCode : WeightsErrorCode.Internal, message }
    }
    default:
      throw new ProtocolDecodeError(`unknown weights frame type ${raw.type}`)
  }
}
