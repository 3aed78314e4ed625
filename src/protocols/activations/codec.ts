import { z } from 'zod'
import { ActivationErrorCode, ProtocolDecodeError, ProtocolEncodeError } from '../../shared/errors/protocol-errors.js'
import { TensorDecodeError } from '../../shared/errors/tensor-errors.js'
import { asPlanId, asRequestId } from '../../shared/ids.js'
import type { PlanId, RequestId } from '../../shared/ids.js'
import type { GrammarSpec, SamplingParams } from '../../shared/inference.js'
import { decodeTensor, encodedTensorBytes, encodeTensorInto } from '../../shared/tensor-codec.js'
import { DType, DTYPE_BYTES } from '../../shared/tensor.js'
import { BodyReader, decodeJson, decodeUtf8, encodeFrame, encodeUtf8, FRAME_BODY_OFFSET, frameBuffer } from '../framing.js'
import type { RawFrame } from '../framing.js'
import { grammarSchema, REQUEST_ID_PATTERN, samplingSchema } from '../inference/schema.js'
import {
  ActivationFrameType, FLAG_LAST, MAX_CONTEXT_SIZE, MAX_ERROR_MESSAGE_BYTES, MAX_FRAME_BYTES, MAX_OPEN_BYTES,
  MAX_RECENT_TOKENS, MAX_RESUMED_TOKENS, MAX_TOKENS_PER_FRAME, PREFILL_CHUNK_BYTES, PREFILL_CHUNK_MAX_TOKENS
} from './constants.js'

/** Pure codec of protocols/activations.md. Decoders throw only `ProtocolDecodeError`. */

export const PLAN_ID_PATTERN = /^[0-9a-f]{64}$/

export interface OpenFrame {
  type: 'open'
  requestId: RequestId
  planId: PlanId
  /** index of the receiving stage (0 on the last hop) */
  toStage: number
  contextSize: number
  sampling?: SamplingParams
  grammar?: GrammarSpec
  recentTokens?: number[]
  /** failover: tokens generated before this ring took the request over (the last stage replays its grammar and draws) */
  resumedTokens?: number[]
  /** prefix reuse (1.2.0): keep this request's KV after END */
  retain?: boolean
  /** prefix reuse (1.2.0): start from the KV retained when `requestId` ended, cut to its first `keep` positions */
  prefix?: { requestId: RequestId, keep: number }
}

interface RequestScoped { requestId: RequestId, planId: PlanId }

export interface HiddenFrame extends RequestScoped {
  type: 'prefill' | 'decode'
  /** position of the first token */
  start: number
  count: number
  /** PREFILL: the prompt ends with this chunk (sample after it). Always false for DECODE. */
  last: boolean
  /** wire dtype (decoded data is always f32) */
  dtype: DType
  nEmbd: number
  /** (count, nEmbd) f32 row-major */
  hidden: Float32Array
}

export interface ResultFrame extends RequestScoped { type: 'result', position: number, tokenId: number }
export interface ErrorFrame { type: 'error', code: ActivationErrorCode, message: string }
export interface EndFrame extends RequestScoped { type: 'end' }

export type ActivationFrame = OpenFrame | HiddenFrame | ResultFrame | ErrorFrame | EndFrame

const openSchema = z.strictObject({
  requestId: z.string().regex(REQUEST_ID_PATTERN),
  planId: z.string().regex(PLAN_ID_PATTERN),
  toStage: z.number().int().min(0).max(255),
  contextSize: z.number().int().min(1).max(MAX_CONTEXT_SIZE),
  sampling: samplingSchema.optional(),
  grammar: grammarSchema.optional(),
  recentTokens: z.array(z.number().int().min(0).max(0xffffffff)).max(MAX_RECENT_TOKENS).optional(),
  resumedTokens: z.array(z.number().int().min(0).max(0xffffffff)).max(MAX_RESUMED_TOKENS).optional(),
  retain: z.boolean().optional(),
  prefix: z.strictObject({ requestId: z.string().regex(REQUEST_ID_PATTERN), keep: z.number().int().min(0).max(MAX_CONTEXT_SIZE) }).optional()
})

/** Tokens per PREFILL chunk for a hidden size: ≤ PREFILL_CHUNK_BYTES of payload, ≤ 512 tokens, ≥ 1. */
export function prefillChunkTokens (nEmbd: number, dtype: DType = DType.F32): number {
  return Math.max(1, Math.min(PREFILL_CHUNK_MAX_TOKENS, Math.floor(PREFILL_CHUNK_BYTES / (nEmbd * DTYPE_BYTES[dtype]))))
}

/** Splits `nTokens` prompt positions starting at `start` into PREFILL chunks. */
export function prefillChunks (start: number, nTokens: number, nEmbd: number, dtype: DType = DType.F32): Array<{ start: number, count: number, last: boolean }> {
  const size = prefillChunkTokens(nEmbd, dtype)
  const out: Array<{ start: number, count: number, last: boolean }> = []
  for (let off = 0; off < nTokens; off += size) {
    const count = Math.min(size, nTokens - off)
    out.push({ start: start + off, count, last: off + count === nTokens })
  }
  return out
}

function u32 (v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new ProtocolEncodeError(`${field} ${v} is not a u32`)
  return v
}

/**
 * The request header (requestIdLength, requestId, planId) of one stream's frames, validated. A stream
 * encodes it once and passes it to `encodeActivationFrame`, and to `decodeActivationFrame` to match.
 */
export function encodeRequestHeader (f: RequestScoped): Uint8Array {
  if (!REQUEST_ID_PATTERN.test(f.requestId)) throw new ProtocolEncodeError(`request id ${JSON.stringify(f.requestId)} does not match ${REQUEST_ID_PATTERN.source}`)
  if (!PLAN_ID_PATTERN.test(f.planId)) throw new ProtocolEncodeError(`plan id ${JSON.stringify(f.planId)} is not 64 lowercase hex characters`)
  const id = encodeUtf8(f.requestId)
  const out = new Uint8Array(1 + id.byteLength + 32)
  out[0] = id.byteLength
  out.set(id, 1)
  out.set(Buffer.from(f.planId, 'hex'), 1 + id.byteLength)
  return out
}

/** A stream's expected request header: frames that start with `bytes` carry `ids`. */
export interface KnownRequestHeader { bytes: Uint8Array, ids: RequestScoped }

function readRequestHeader (r: BodyReader, what: string, known?: KnownRequestHeader): RequestScoped {
  if (known !== undefined && r.startsWith(known.bytes)) {
    r.bytes(known.bytes.byteLength, 'request header')
    return known.ids
  }
  const n = r.u8('requestIdLength')
  const requestId = decodeUtf8(r.bytes(n, 'requestId'), `${what} requestId`)
  if (!REQUEST_ID_PATTERN.test(requestId)) throw new ProtocolDecodeError(`${what}: request id ${JSON.stringify(requestId.slice(0, 40))} is not 1–128 of [A-Za-z0-9._:-]`)
  const planId = Buffer.from(r.bytes(32, 'planId')).toString('hex')
  return { requestId: asRequestId(requestId), planId: asPlanId(planId) }
}

/**
 * Encodes one frame as one buffer.
 * @param header this stream's `encodeRequestHeader` (skips re-validating the ids of every frame);
 *   the frame's own ids when omitted
 */
export function encodeActivationFrame (frame: ActivationFrame, header?: Uint8Array): Uint8Array {
  switch (frame.type) {
    case 'open': {
      const { type: _type, ...body } = frame
      const parsed = openSchema.safeParse(body)
      if (!parsed.success) throw new ProtocolEncodeError(`OPEN: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
      const bytes = encodeUtf8(JSON.stringify(body))
      if (bytes.byteLength > MAX_OPEN_BYTES) throw new ProtocolEncodeError(`OPEN of ${bytes.byteLength} bytes exceeds ${MAX_OPEN_BYTES}`)
      return encodeFrame(ActivationFrameType.Open, [bytes], MAX_FRAME_BYTES)
    }
    case 'prefill':
    case 'decode': {
      const count = u32(frame.count, 'count')
      if (count < 1 || count > MAX_TOKENS_PER_FRAME) throw new ProtocolEncodeError(`count ${count} not in [1, ${MAX_TOKENS_PER_FRAME}]`)
      if (frame.type === 'decode' && count !== 1) throw new ProtocolEncodeError(`DECODE carries 1 token, not ${count}`)
      const head = header ?? encodeRequestHeader(frame)
      // (count, nEmbd) f32 → tensor [count, nEmbd], written straight into the frame
      const shape = [count, frame.nEmbd]
      const type = frame.type === 'prefill' ? ActivationFrameType.Prefill : ActivationFrameType.Decode
      const out = frameBuffer(type, head.byteLength + 9 + encodedTensorBytes(shape, frame.dtype), MAX_FRAME_BYTES)
      let o = FRAME_BODY_OFFSET
      out.set(head, o)
      o += head.byteLength
      const v = new DataView(out.buffer, o, 9)
      v.setUint32(0, u32(frame.start, 'start'), true)
      v.setUint32(4, count, true)
      v.setUint8(8, frame.type === 'prefill' && frame.last ? FLAG_LAST : 0)
      encodeTensorInto(out, o + 9, shape, frame.hidden, frame.dtype)
      return out
    }
    case 'result': {
      const head = header ?? encodeRequestHeader(frame)
      const out = frameBuffer(ActivationFrameType.Result, head.byteLength + 8, MAX_FRAME_BYTES)
      out.set(head, FRAME_BODY_OFFSET)
      const v = new DataView(out.buffer, FRAME_BODY_OFFSET + head.byteLength, 8)
      v.setUint32(0, u32(frame.position, 'position'), true)
      v.setUint32(4, u32(frame.tokenId, 'tokenId'), true)
      return out
    }
    case 'error': {
      let msg = encodeUtf8(frame.message)
      // truncate on a character boundary
      let chars = frame.message.length
      while (msg.byteLength > MAX_ERROR_MESSAGE_BYTES) { chars = Math.floor(chars * 0.9); msg = encodeUtf8(frame.message.slice(0, chars)) }
      const fixed = new Uint8Array(4)
      const v = new DataView(fixed.buffer)
      if (!Number.isInteger(frame.code) || frame.code < 1 || frame.code > 0xffff) throw new ProtocolEncodeError(`error code ${frame.code} is not in [1, 65535]`)
      v.setUint16(0, frame.code, true)
      v.setUint16(2, msg.byteLength, true)
      return encodeFrame(ActivationFrameType.Error, [fixed, msg], MAX_FRAME_BYTES)
    }
    case 'end':
      return encodeFrame(ActivationFrameType.End, [header ?? encodeRequestHeader(frame)], MAX_FRAME_BYTES)
  }
}

function decodeHidden (raw: RawFrame, type: 'prefill' | 'decode', known: KnownRequestHeader | undefined): HiddenFrame {
  const what = type === 'prefill' ? 'PREFILL' : 'DECODE'
  const r = new BodyReader(raw.body, what)
  const head = readRequestHeader(r, what, known)
  const start = r.u32('start')
  const count = r.u32('count')
  const flags = r.u8('flags')
  if (count < 1 || count > MAX_TOKENS_PER_FRAME) throw new ProtocolDecodeError(`${what}: count ${count} not in [1, ${MAX_TOKENS_PER_FRAME}]`)
  if (type === 'decode' && count !== 1) throw new ProtocolDecodeError(`DECODE: count ${count}, must be 1`)
  if ((type === 'decode' && flags !== 0) || (flags & ~FLAG_LAST) !== 0) throw new ProtocolDecodeError(`${what}: unknown flags 0x${flags.toString(16)}`)
  if (start + count > MAX_CONTEXT_SIZE) throw new ProtocolDecodeError(`${what}: positions ${start}+${count} beyond ${MAX_CONTEXT_SIZE}`)
  let tensor
  try {
    tensor = decodeTensor(r.rest(), MAX_FRAME_BYTES / 2)
  } catch (err) {
    if (err instanceof TensorDecodeError) throw new ProtocolDecodeError(`${what}: ${err.message}`, { cause: err })
    throw err
  }
  if (tensor.shape.length !== 2 || tensor.shape[0] !== count) throw new ProtocolDecodeError(`${what}: tensor shape [${tensor.shape.join(', ')}] is not [${count}, nEmbd]`)
  return { type, ...head, start, count, last: (flags & FLAG_LAST) !== 0, dtype: tensor.dtype, nEmbd: tensor.shape[1]!, hidden: tensor.data }
}

/**
 * Decodes one frame body. Throws only `ProtocolDecodeError`.
 * @param known the stream's request header: frames that carry it skip decoding and re-validating the ids
 */
export function decodeActivationFrame (raw: RawFrame, known?: KnownRequestHeader): ActivationFrame {
  switch (raw.type) {
    case ActivationFrameType.Open: {
      if (raw.body.byteLength > MAX_OPEN_BYTES) throw new ProtocolDecodeError(`OPEN of ${raw.body.byteLength} bytes exceeds ${MAX_OPEN_BYTES}`)
      const r = openSchema.safeParse(decodeJson(raw.body, 'OPEN'))
      if (!r.success) {
        const issue = r.error.issues[0]
        throw new ProtocolDecodeError(`OPEN: ${issue === undefined ? 'invalid' : `${issue.path.join('.') || '(root)'}: ${issue.message}`}`)
      }
      const { prefix, ...rest } = r.data
      return { type: 'open', ...rest, requestId: asRequestId(r.data.requestId), planId: asPlanId(r.data.planId), ...(prefix !== undefined ? { prefix: { requestId: asRequestId(prefix.requestId), keep: prefix.keep } } : {}) }
    }
    case ActivationFrameType.Prefill: return decodeHidden(raw, 'prefill', known)
    case ActivationFrameType.Decode: return decodeHidden(raw, 'decode', known)
    case ActivationFrameType.Result: {
      const r = new BodyReader(raw.body, 'RESULT')
      const head = readRequestHeader(r, 'RESULT', known)
      const position = r.u32('position')
      const tokenId = r.u32('tokenId')
      r.end()
      return { type: 'result', ...head, position, tokenId }
    }
    case ActivationFrameType.Error: {
      const r = new BodyReader(raw.body, 'ERROR')
      const code = r.u16('code')
      const n = r.u16('messageLength')
      if (n > MAX_ERROR_MESSAGE_BYTES) throw new ProtocolDecodeError(`ERROR: message of ${n} bytes exceeds ${MAX_ERROR_MESSAGE_BYTES}`)
      const message = decodeUtf8(r.bytes(n, 'message'), 'ERROR message')
      r.end()
      const known = code >= ActivationErrorCode.PlanMismatch && code <= ActivationErrorCode.PrefixMissing
      return { type: 'error', code: known ? code : ActivationErrorCode.Internal, message }
    }
    case ActivationFrameType.End: {
      const r = new BodyReader(raw.body, 'END')
      const head = readRequestHeader(r, 'END', known)
      r.end()
      return { type: 'end', ...head }
    }
    default:
      throw new ProtocolDecodeError(`unknown activations frame type ${raw.type}`)
  }
}
