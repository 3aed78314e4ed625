import { ProtocolDecodeError, ProtocolEncodeError } from '../../shared/errors/protocol-errors.js'
import type { GenerationEvent, InferenceRequest } from '../../shared/inference.js'
import { BodyReader, decodeJson, decodeUtf8, encodeFrame, encodeUtf8 } from '../framing.js'
import type { RawFrame } from '../framing.js'
import { InferenceFrameType, MAX_EVENT_BYTES, MAX_REQUEST_BYTES } from './constants.js'
import { ERROR_CODE_PATTERN, MAX_ERROR_MESSAGE_CHARS, parseDone, parseError, parseInferenceRequest } from './schema.js'

/** Pure codec of protocols/inference.md. Decoders throw only `ProtocolDecodeError`. */

/** What the server sends: generation events, or one terminal error. */
export type InferenceServerFrame =
  | { type: 'event', event: GenerationEvent }
  | { type: 'error', code: string, message: string }

export function encodeRequestFrame (request: InferenceRequest): Uint8Array {
  return encodeFrame(InferenceFrameType.Request, [encodeUtf8(JSON.stringify(request))], MAX_REQUEST_BYTES)
}

/** The one frame a client sends. */
export function decodeRequestFrame (raw: RawFrame): InferenceRequest {
  if (raw.type !== InferenceFrameType.Request) throw new ProtocolDecodeError(`expected REQUEST (type 1), got type ${raw.type}`)
  return parseInferenceRequest(decodeJson(raw.body, 'REQUEST'))
}

export function encodeServerFrame (frame: InferenceServerFrame): Uint8Array {
  if (frame.type === 'error') {
    if (!ERROR_CODE_PATTERN.test(frame.code)) throw new ProtocolEncodeError(`error code ${JSON.stringify(frame.code)} does not match ${ERROR_CODE_PATTERN.source}`)
    const message = frame.message.length > MAX_ERROR_MESSAGE_CHARS ? frame.message.slice(0, MAX_ERROR_MESSAGE_CHARS) : frame.message
    return encodeFrame(InferenceFrameType.Error, [encodeUtf8(JSON.stringify({ code: frame.code, message }))], MAX_EVENT_BYTES)
  }
  const event = frame.event
  if (event.type === 'token') {
    if (!Number.isInteger(event.tokenId) || event.tokenId < 0 || event.tokenId > 0xffffffff) throw new ProtocolEncodeError(`token id ${event.tokenId} is not a u32`)
    const id = new Uint8Array(4)
    new DataView(id.buffer).setUint32(0, event.tokenId, true)
    return encodeFrame(InferenceFrameType.Token, [id, encodeUtf8(event.text)], MAX_EVENT_BYTES)
  }
  const { type: _type, ...done } = event
  return encodeFrame(InferenceFrameType.Done, [encodeUtf8(JSON.stringify(done))], MAX_EVENT_BYTES)
}

export function decodeServerFrame (raw: RawFrame): InferenceServerFrame {
  switch (raw.type) {
    case InferenceFrameType.Token: {
      const r = new BodyReader(raw.body, 'TOKEN')
      const tokenId = r.u32('tokenId')
      return { type: 'event', event: { type: 'token', tokenId, text: decodeUtf8(r.rest(), 'TOKEN text') } }
    }
    case InferenceFrameType.Done:
      return { type: 'event', event: parseDone(decodeJson(raw.body, 'DONE')) }
    case InferenceFrameType.Error:
      return { type: 'error', ...parseError(decodeJson(raw.body, 'ERROR')) }
    default:
      throw new ProtocolDecodeError(`unexpected frame type ${raw.type} from an inference server`)
  }
}
