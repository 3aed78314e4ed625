import { Uint8ArrayList } from 'uint8arraylist'
import { FrameTooLargeError, ProtocolDecodeError, ProtocolEncodeError } from '../shared/errors/protocol-errors.js'

/**
 * The framing shared by the exo-p2p stream protocols (protocols/activations.md "Framing"):
 * `[u32 LE length][u8 type][body]`, length = 1 + body bytes.
 */
export const FRAME_PREFIX_BYTES = 4
/** where a frame's body starts: after the length prefix and the type byte */
export const FRAME_BODY_OFFSET = FRAME_PREFIX_BYTES + 1

/** One frame as read off the wire, before its body is decoded. */
export interface RawFrame {
  type: number
  body: Uint8Array
}

/** Frames `body` (given as parts, copied into one buffer) under `type`. */
export function encodeFrame (type: number, parts: readonly Uint8Array[], maxFrameBytes: number): Uint8Array {
  let bodyBytes = 0
  for (const p of parts) bodyBytes += p.byteLength
  const out = frameBuffer(type, bodyBytes, maxFrameBytes)
  let offset = FRAME_PREFIX_BYTES + 1
  for (const p of parts) { out.set(p, offset); offset += p.byteLength }
  return out
}

/**
 * A frame of `bodyBytes` body in ONE buffer, its prefix and type written, the body to be filled from
 * offset 5. One buffer per frame: each piece of a list would be encrypted and written on its own.
 */
export function frameBuffer (type: number, bodyBytes: number, maxFrameBytes: number): Uint8Array {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new ProtocolEncodeError(`frame type ${type} is not a byte`)
  const length = 1 + bodyBytes
  if (length > maxFrameBytes) throw new ProtocolEncodeError(`frame of ${length} bytes exceeds the limit of ${maxFrameBytes} bytes`)
  const out = new Uint8Array(FRAME_PREFIX_BYTES + length)
  new DataView(out.buffer).setUint32(0, length, true)
  out[FRAME_PREFIX_BYTES] = type
  return out
}

/**
 * Incremental decoder: push received chunks, get whole frames. Throws `FrameTooLargeError` (a
 * `ProtocolDecodeError`) as soon as a length prefix is 0 or above `maxFrameBytes`, before the body
 * arrives; after that the decoder is poisoned (the stream cannot be resynchronised).
 */
export class FrameDecoder {
  private readonly buffer = new Uint8ArrayList<ArrayBufferLike>()
  private failed: ProtocolDecodeError | undefined

  constructor (readonly maxFrameBytes: number) {}

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes (): number { return this.buffer.byteLength }

  push (chunk: Uint8Array | Uint8ArrayList): RawFrame[] {
    if (this.failed !== undefined) throw this.failed
    this.buffer.append(chunk)
    const frames: RawFrame[] = []
    while (this.buffer.byteLength >= FRAME_PREFIX_BYTES) {
      const length = this.buffer.getUint32(0, true)
      if (length === 0 || length > this.maxFrameBytes) {
        this.failed = new FrameTooLargeError(length, this.maxFrameBytes)
        throw this.failed
      }
      if (this.buffer.byteLength < FRAME_PREFIX_BYTES + length) break
      const type = this.buffer.get(FRAME_PREFIX_BYTES)
      // subarray copies only when the body spans several received chunks
      const body = this.buffer.subarray(FRAME_PREFIX_BYTES + 1, FRAME_PREFIX_BYTES + length)
      this.buffer.consume(FRAME_PREFIX_BYTES + length)
      frames.push({ type, body })
    }
    return frames
  }
}

/** Cursor over a frame body that throws `ProtocolDecodeError` instead of reading past the end. */
export class BodyReader {
  private offset = 0
  private readonly view: DataView

  constructor (private readonly data: Uint8Array, private readonly what: string) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  }

  get remaining (): number { return this.data.byteLength - this.offset }

  private need (n: number, field: string): void {
    if (this.remaining < n) throw new ProtocolDecodeError(`${this.what}: body ends inside ${field} (${this.remaining} of ${n} bytes left)`)
  }

  u8 (field: string): number { this.need(1, field); return this.view.getUint8(this.offset++) }
  u16 (field: string): number { this.need(2, field); const v = this.view.getUint16(this.offset, true); this.offset += 2; return v }
  u32 (field: string): number { this.need(4, field); const v = this.view.getUint32(this.offset, true); this.offset += 4; return v }
  bytes (n: number, field: string): Uint8Array { this.need(n, field); const b = this.data.subarray(this.offset, this.offset + n); this.offset += n; return b }
  /** Whether the unread bytes begin with `prefix`. */
  startsWith (prefix: Uint8Array): boolean {
    if (this.remaining < prefix.byteLength) return false
    for (let i = 0; i < prefix.byteLength; i++) if (this.data[this.offset + i] !== prefix[i]) return false
    return true
  }

  rest (): Uint8Array { const b = this.data.subarray(this.offset); this.offset = this.data.byteLength; return b }
  end (): void {
    if (this.remaining !== 0) throw new ProtocolDecodeError(`${this.what}: ${this.remaining} trailing bytes`)
  }
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true })
const utf8Encoder = new TextEncoder()

/** Strict UTF-8 decode; invalid sequences → `ProtocolDecodeError`. */
export function decodeUtf8 (bytes: Uint8Array, what: string): string {
  try {
    return utf8Strict.decode(bytes)
  } catch (err) {
    throw new ProtocolDecodeError(`${what}: invalid UTF-8`, { cause: err })
  }
}

export function encodeUtf8 (s: string): Uint8Array { return utf8Encoder.encode(s) }

/** Parses a UTF-8 JSON body; any failure → `ProtocolDecodeError`. */
export function decodeJson (bytes: Uint8Array, what: string): unknown {
  const text = decodeUtf8(bytes, what)
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ProtocolDecodeError(`${what}: invalid JSON (${(err as Error).message})`, { cause: err })
  }
}
