import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeActivationFrame, encodeActivationFrame, encodeRequestHeader, prefillChunks, prefillChunkTokens } from '../../../src/protocols/activations/codec.js'
import type { ActivationFrame } from '../../../src/protocols/activations/codec.js'
import { MAX_FRAME_BYTES, PREFILL_CHUNK_BYTES } from '../../../src/protocols/activations/constants.js'
import { FrameDecoder } from '../../../src/protocols/framing.js'
import type { RawFrame } from '../../../src/protocols/framing.js'
import { ActivationErrorCode, ProtocolDecodeError, ProtocolEncodeError } from '../../../src/shared/errors/protocol-errors.js'
import { asPlanId, asRequestId } from '../../../src/shared/ids.js'
import { DType } from '../../../src/shared/tensor.js'
import { prng, randomBytes } from '../../helpers/prng.js'

const planId = asPlanId('ab'.repeat(32))
const requestId = asRequestId('req_0123abcd')

function roundTrip (f: ActivationFrame): ActivationFrame {
  const frames = new FrameDecoder(MAX_FRAME_BYTES).push(encodeActivationFrame(f))
  assert.equal(frames.length, 1)
  return decodeActivationFrame(frames[0]!)
}

function raw (f: ActivationFrame): RawFrame {
  return new FrameDecoder(MAX_FRAME_BYTES).push(encodeActivationFrame(f))[0]!
}

test('every frame type round-trips', () => {
  const open: ActivationFrame = { type: 'open', requestId, planId, toStage: 2, contextSize: 512, sampling: { temperature: 0.7, topK: 40, seed: 9 }, grammar: { kind: 'json' }, recentTokens: [1, 2, 3] }
  assert.deepEqual(roundTrip(open), open)
  const minimal: ActivationFrame = { type: 'open', requestId, planId, toStage: 0, contextSize: 1 }
  assert.deepEqual(roundTrip(minimal), minimal)
  const hidden = new Float32Array(3 * 8).map((_, i) => Math.sin(i) * 1e3)
  const prefill: ActivationFrame = { type: 'prefill', requestId, planId, start: 5, count: 3, last: true, dtype: DType.F32, nEmbd: 8, hidden }
  const back = roundTrip(prefill)
  assert.deepEqual(back, prefill)
  const decode: ActivationFrame = { type: 'decode', requestId, planId, start: 8, count: 1, last: false, dtype: DType.F16, nEmbd: 4, hidden: new Float32Array([1, -2, 0.5, 65504]) }
  assert.deepEqual(roundTrip(decode), decode)
  const result: ActivationFrame = { type: 'result', requestId, planId, position: 9, tokenId: 31999 }
  assert.deepEqual(roundTrip(result), result)
  const err: ActivationFrame = { type: 'error', code: ActivationErrorCode.PlanMismatch, message: 'plan ab… is not held; this stage holds cd…' }
  assert.deepEqual(roundTrip(err), err)
  assert.deepEqual(roundTrip({ type: 'end', requestId, planId }), { type: 'end', requestId, planId })
})

test('prefill chunks respect the chunk byte bound, cover every position once and mark only the last', () => {
  for (const nEmbd of [64, 288, 2048, 4096, 8192, 300_000]) {
    const size = prefillChunkTokens(nEmbd)
    assert.ok(size >= 1 && size <= 512)
    if (size > 1) assert.ok(size * nEmbd * 4 <= PREFILL_CHUNK_BYTES, `nEmbd ${nEmbd}`)
    const chunks = prefillChunks(10, 1000, nEmbd)
    let pos = 10
    for (const c of chunks) { assert.equal(c.start, pos); pos += c.count }
    assert.equal(pos, 1010)
    assert.deepEqual(chunks.map((c) => c.last), chunks.map((_, i) => i === chunks.length - 1))
  }
  // the biggest chunk of a realistic model is far below the frame limit
  const n = prefillChunkTokens(8192)
  const frame = encodeActivationFrame({ type: 'prefill', requestId, planId, start: 0, count: n, last: false, dtype: DType.F32, nEmbd: 8192, hidden: new Float32Array(n * 8192) })
  assert.ok(frame.byteLength <= PREFILL_CHUNK_BYTES + 256)
})

test('encoder refuses invalid frames', () => {
  assert.throws(() => encodeActivationFrame({ type: 'decode', requestId, planId, start: 0, count: 2, last: false, dtype: DType.F32, nEmbd: 1, hidden: new Float32Array(2) }), ProtocolEncodeError)
  assert.throws(() => encodeActivationFrame({ type: 'end', requestId: asRequestId('bad id with spaces'), planId }), ProtocolEncodeError)
  assert.throws(() => encodeActivationFrame({ type: 'end', requestId, planId: asPlanId('AB'.repeat(32)) }), ProtocolEncodeError)
  assert.throws(() => encodeActivationFrame({ type: 'open', requestId, planId, toStage: 1, contextSize: 0 }), ProtocolEncodeError)
  const long = encodeActivationFrame({ type: 'error', code: ActivationErrorCode.Internal, message: 'é'.repeat(5000) })
  assert.ok(long.byteLength <= 5 + 4 + 1024)
})

test('semantic violations are typed decode errors', () => {
  const ok = raw({ type: 'prefill', requestId, planId, start: 0, count: 2, last: false, dtype: DType.F32, nEmbd: 4, hidden: new Float32Array(8) })
  // count field says 3 but the tensor has 2 rows
  const body = ok.body.slice()
  const countOffset = 1 + requestId.length + 32 + 4
  new DataView(body.buffer).setUint32(countOffset, 3, true)
  assert.throws(() => decodeActivationFrame({ type: 2, body }), /shape \[2, 4\] is not \[3, nEmbd\]/)
  // unknown flag bit
  const flagged = ok.body.slice()
  flagged[countOffset + 4] = 0x80
  assert.throws(() => decodeActivationFrame({ type: 2, body: flagged }), ProtocolDecodeError)
  // truncated tensor
  assert.throws(() => decodeActivationFrame({ type: 2, body: ok.body.subarray(0, ok.body.byteLength - 1) }), ProtocolDecodeError)
  // trailing bytes after END
  const end = raw({ type: 'end', requestId, planId })
  assert.throws(() => decodeActivationFrame({ type: 6, body: new Uint8Array([...end.body, 0]) }), /trailing/)
  // OPEN with an unknown key and with a bad plan id
  const json = (o: unknown): RawFrame => ({ type: 1, body: new TextEncoder().encode(JSON.stringify(o)) })
  assert.throws(() => decodeActivationFrame(json({ requestId, planId, toStage: 1, contextSize: 4, extra: 1 })), ProtocolDecodeError)
  assert.throws(() => decodeActivationFrame(json({ requestId, planId: 'xyz', toStage: 1, contextSize: 4 })), /planId/)
  assert.throws(() => decodeActivationFrame({ type: 7, body: new Uint8Array(0) }), /unknown activations frame type 7/)
  // unknown error codes read as INTERNAL
  const e = decodeActivationFrame({ type: 5, body: new Uint8Array([0x39, 0x30, 0, 0]) })
  assert.deepEqual(e, { type: 'error', code: ActivationErrorCode.Internal, message: '' })
})

test('fuzz: random and mutated bodies never throw anything but ProtocolDecodeError', () => {
  const rand = prng(42)
  const seeds = [
    raw({ type: 'open', requestId, planId, toStage: 1, contextSize: 64, sampling: { temperature: 0 } }),
    raw({ type: 'prefill', requestId, planId, start: 0, count: 2, last: true, dtype: DType.F16, nEmbd: 3, hidden: new Float32Array(6) }),
    raw({ type: 'decode', requestId, planId, start: 7, count: 1, last: false, dtype: DType.F32, nEmbd: 3, hidden: new Float32Array(3) }),
    raw({ type: 'result', requestId, planId, position: 1, tokenId: 2 }),
    raw({ type: 'error', code: 3, message: 'x' }),
    raw({ type: 'end', requestId, planId })
  ]
  let decoded = 0
  for (let i = 0; i < 20_000; i++) {
    let frame: RawFrame
    if (i % 3 === 0) {
      frame = { type: Math.floor(rand() * 9), body: randomBytes(rand, Math.floor(rand() * 120)) }
    } else {
      const seed = seeds[i % seeds.length]!
      const body = seed.body.slice()
      const flips = 1 + Math.floor(rand() * 4)
      for (let k = 0; k < flips; k++) body[Math.floor(rand() * body.length)] = Math.floor(rand() * 256)
      frame = { type: seed.type, body: rand() < 0.2 ? body.subarray(0, Math.floor(rand() * body.length)) : body }
    }
    try {
      decodeActivationFrame(frame)
      decoded++
    } catch (err) {
      assert.ok(err instanceof ProtocolDecodeError, `frame ${i}: ${String(err)}`)
    }
  }
  assert.ok(decoded > 100, `some mutations stay valid (${decoded})`)
})

test('fuzz: random byte streams through the frame decoder raise only ProtocolDecodeError', () => {
  const rand = prng(3)
  for (let i = 0; i < 2000; i++) {
    const dec = new FrameDecoder(MAX_FRAME_BYTES)
    try {
      for (const f of dec.push(randomBytes(rand, Math.floor(rand() * 64)))) decodeActivationFrame(f)
    } catch (err) {
      assert.ok(err instanceof ProtocolDecodeError, String(err))
    }
  }
})

test('a stream\'s cached request header encodes the same bytes, and decodes its own frames only', () => {
  const ids = { requestId, planId }
  const header = encodeRequestHeader(ids)
  const known = { bytes: header, ids }
  const hidden = Float32Array.from({ length: 24 }, (_, i) => i * 0.5 - 3)
  const frames: ActivationFrame[] = [
    { type: 'decode', requestId, planId, start: 7, count: 1, last: false, dtype: DType.F32, nEmbd: 24, hidden },
    { type: 'prefill', requestId, planId, start: 0, count: 2, last: true, dtype: DType.F16, nEmbd: 12, hidden },
    { type: 'result', requestId, planId, position: 8, tokenId: 31999 },
    { type: 'end', requestId, planId }
  ]
  for (const f of frames) {
    const withHeader = encodeActivationFrame(f, header)
    assert.deepEqual(withHeader, encodeActivationFrame(f), `${f.type}: same bytes`)
    const r = new FrameDecoder(MAX_FRAME_BYTES).push(withHeader)[0]!
    assert.deepEqual(decodeActivationFrame(r, known), decodeActivationFrame(r), `${f.type}: same frame`)
  }
  // a frame of another request on this stream is decoded with ITS ids (the channel then refuses it)
  const other = asRequestId('req_other')
  const f = decodeActivationFrame(raw({ type: 'result', requestId: other, planId, position: 1, tokenId: 2 }), known)
  assert.equal(f.type === 'result' ? f.requestId : '', other)
  // a header that only starts like ours (longer request id sharing its prefix) is not taken for ours
  const longer = asRequestId(`${requestId}x`)
  const g = decodeActivationFrame(raw({ type: 'end', requestId: longer, planId }), known)
  assert.equal(g.type === 'end' ? g.requestId : '', longer)
})

test('1.2.0: OPEN with retain and prefix round-trips, a bad prefix is refused, ERROR PREFIX_MISSING keeps its code', () => {
  const open: ActivationFrame = { type: 'open', requestId, planId, toStage: 1, contextSize: 768, retain: true, prefix: { requestId: asRequestId('r-older'), keep: 700 } }
  assert.deepEqual(roundTrip(open), open)
  const body = (o: object): RawFrame => ({ type: 1, body: new TextEncoder().encode(JSON.stringify({ requestId, planId, toStage: 1, contextSize: 8, ...o })) })
  for (const prefix of [{ requestId: 'bad id', keep: 1 }, { requestId: 'r', keep: -1 }, { requestId: 'r', keep: 1, extra: 0 }, { keep: 1 }]) {
    assert.throws(() => decodeActivationFrame(body({ prefix })), ProtocolDecodeError, JSON.stringify(prefix))
  }
  const err: ActivationFrame = { type: 'error', code: ActivationErrorCode.PrefixMissing, message: 'the KV of r-older is not retained here' }
  assert.deepEqual(roundTrip(err), err)
})
