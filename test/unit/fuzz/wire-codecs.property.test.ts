// Property tests of the stream protocols' codecs (inference, activations, weights, framing): arbitrary and
// mutated bytes decode to a frame or fail with ProtocolDecodeError; generated valid frames round-trip.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { FrameDecoder } from '../../../src/protocols/framing.js'
import type { RawFrame } from '../../../src/protocols/framing.js'
import { decodeRequestFrame, decodeServerFrame, encodeRequestFrame } from '../../../src/protocols/inference/codec.js'
import { MAX_REQUEST_BYTES } from '../../../src/protocols/inference/constants.js'
import { decodeActivationFrame, encodeActivationFrame } from '../../../src/protocols/activations/codec.js'
import type { ActivationFrame } from '../../../src/protocols/activations/codec.js'
import { MAX_FRAME_BYTES } from '../../../src/protocols/activations/constants.js'
import { decodeWeightsFrame, encodeWeightsFrame } from '../../../src/protocols/weights/codec.js'
import type { WeightsFrame } from '../../../src/protocols/weights/codec.js'
import { MAX_FRAME_BYTES as WEIGHTS_MAX_FRAME_BYTES, Provenance } from '../../../src/protocols/weights/constants.js'
import { decodeTensor } from '../../../src/shared/tensor-codec.js'
import { ProtocolDecodeError } from '../../../src/shared/errors/protocol-errors.js'
import { TensorDecodeError } from '../../../src/shared/errors/tensor-errors.js'
import { asModelId, asPlanId, asRequestId } from '../../../src/shared/ids.js'
import { DType } from '../../../src/shared/tensor.js'
import type { InferenceRequest } from '../../../src/shared/inference.js'
import { FUZZ, mutate, typedOrValid } from './typed-or-valid.js'
import type { Mutation } from './typed-or-valid.js'

const decoders: Array<[string, (raw: RawFrame) => unknown]> = [
  ['inference request', decodeRequestFrame],
  ['inference server', decodeServerFrame],
  ['activations', (raw) => decodeActivationFrame(raw)],
  ['weights', decodeWeightsFrame]
]

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff, 0x80000000, 4096, 65536) })
)

/** Splits bytes at arbitrary points: a frame decoder must not care how the transport chunks the stream. */
function chunks (bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let prev = 0
  for (const c of [...at, bytes.byteLength]) { out.push(bytes.subarray(prev, c)); prev = c }
  return out
}

/** Every frame the decoder yields from `bytes` (chunked), each body through `decode`. */
function decodeStream (bytes: Uint8Array, cuts: number[], max: number, decode: (raw: RawFrame) => unknown): void {
  const d = new FrameDecoder(max)
  typedOrValid(() => {
    for (const c of chunks(bytes, cuts)) for (const f of d.push(c)) typedOrValid(() => decode(f), [ProtocolDecodeError])
  }, [ProtocolDecodeError])
}

test('arbitrary bytes: every decoder yields frames or ProtocolDecodeError, however the stream is chunked', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), fc.array(fc.nat(), { maxLength: 6 }), fc.integer({ min: 0, max: 255 }), (bytes, cuts, type) => {
    for (const [, decode] of decoders) {
      decodeStream(bytes, cuts, 1 << 16, decode)
      typedOrValid(() => decode({ type, body: bytes }), [ProtocolDecodeError]) // a body of any type byte
    }
  }), FUZZ)
})

const planId = asPlanId('ab'.repeat(32))
const requestId = asRequestId('req_fuzz')
const activationFrame: fc.Arbitrary<ActivationFrame> = fc.oneof(
  fc.record({
    type: fc.constant('open' as const), requestId: fc.constant(requestId), planId: fc.constant(planId), toStage: fc.integer({ min: 0, max: 64 }), contextSize: fc.integer({ min: 1, max: 1 << 16 }),
    recentTokens: fc.array(fc.integer({ min: 0, max: 2 ** 31 }), { maxLength: 8 })
  }),
  fc.integer({ min: 1, max: 8 }).chain((count) => fc.integer({ min: 1, max: 16 }).chain((nEmbd) => fc.record({
    type: fc.constantFrom('prefill' as const, 'decode' as const),
    requestId: fc.constant(requestId),
    planId: fc.constant(planId),
    start: fc.integer({ min: 0, max: 1 << 20 }),
    count: fc.constant(count),
    last: fc.boolean(),
    dtype: fc.constant(DType.F32),
    nEmbd: fc.constant(nEmbd),
    hidden: fc.float32Array({ minLength: count * nEmbd, maxLength: count * nEmbd, noNaN: true })
  }))),
  fc.record({ type: fc.constant('result' as const), requestId: fc.constant(requestId), planId: fc.constant(planId), position: fc.nat(), tokenId: fc.integer({ min: 0, max: 2 ** 31 }) }),
  fc.record({ type: fc.constant('end' as const), requestId: fc.constant(requestId), planId: fc.constant(planId) })
).map((f) => structuredClone(f.type === 'decode' ? { ...f, count: 1, last: false, hidden: (f as { hidden: Float32Array }).hidden.slice(0, (f as { nEmbd: number }).nEmbd) } : f) as ActivationFrame)

test('activation frames: valid frames round-trip; mutated ones decode or fail typed', () => {
  fc.assert(fc.property(activationFrame, fc.array(mutation, { maxLength: 3 }), fc.array(fc.nat(), { maxLength: 4 }), (frame, ms, cuts) => {
    const bytes = typedOrValid(() => encodeActivationFrame(frame))
    if (bytes === undefined) return // a generated frame the encoder refuses (e.g. decode with count != 1): typed, fine
    const frames = new FrameDecoder(MAX_FRAME_BYTES).push(bytes)
    assert.equal(frames.length, 1)
    const back = decodeActivationFrame(frames[0]!)
    assert.deepEqual(back, frame)
    let m = bytes
    for (const x of ms) m = mutate(m, x)
    decodeStream(m, cuts, MAX_FRAME_BYTES, (raw) => decodeActivationFrame(raw))
  }), FUZZ)
})

const request = (over: Partial<InferenceRequest>): InferenceRequest => ({
  id: asRequestId('r1'), model: asModelId('m'), prompt: { kind: 'text', text: 'hi' }, maxTokens: 4, sampling: {}, stop: [], ...over
})

test('inference REQUEST frames: round-trip of generated requests; mutations decode or fail typed', () => {
  const req = fc.record({
    prompt: fc.oneof(
      fc.record({ kind: fc.constant('text' as const), text: fc.string({ maxLength: 200 }) }),
      fc.record({ kind: fc.constant('chat' as const), messages: fc.array(fc.record({ role: fc.constantFrom('system' as const, 'user' as const, 'assistant' as const), content: fc.string({ maxLength: 80 }) }), { minLength: 1, maxLength: 4 }) })
    ),
    maxTokens: fc.integer({ min: 1, max: 4096 }),
    stop: fc.array(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 3 }) // the dialects drop empty stops
  }).map((r) => structuredClone(r))
  fc.assert(fc.property(req, fc.array(mutation, { minLength: 1, maxLength: 3 }), (over, ms) => {
    const r = request(over as Partial<InferenceRequest>)
    const bytes = encodeRequestFrame(r)
    const frame = new FrameDecoder(MAX_REQUEST_BYTES).push(bytes)[0]!
    assert.deepEqual(decodeRequestFrame(frame), r)
    let m = bytes
    for (const x of ms) m = mutate(m, x)
    decodeStream(m, [], MAX_REQUEST_BYTES, decodeRequestFrame)
    decodeStream(m, [], MAX_REQUEST_BYTES, decodeServerFrame)
  }), FUZZ)
})

test('weights frames: mutations of valid frames decode or fail typed', () => {
  const sha = new Uint8Array(32).fill(7)
  const frames: WeightsFrame[] = [
    { type: 'manifest-request', modelId: 'stories260k' },
    { type: 'manifest', manifest: { fileBytes: 3 << 20, headerBytes: 4096, chunkBytes: 1 << 20, sha256: sha, provenance: Provenance.Hub, chunkSha256: new Uint8Array(3 * 32).fill(1) } },
    { type: 'range-request', modelId: 'm', sha256: sha, firstChunk: 1, chunkCount: 2 },
    { type: 'data', chunkIndex: 2, offset: 0, bytes: new Uint8Array(100).fill(3) }
  ]
  fc.assert(fc.property(fc.constantFrom(...frames), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 3 }), (f, ms, cuts) => {
    let m = typedOrValid(() => encodeWeightsFrame(f))
    if (m === undefined) return
    for (const x of ms) m = mutate(m, x)
    decodeStream(m, cuts, WEIGHTS_MAX_FRAME_BYTES, decodeWeightsFrame)
  }), FUZZ)
})

test('tensors: arbitrary header bytes decode or fail with TensorDecodeError, never allocating an absurd size', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
    const t = typedOrValid(() => decodeTensor(bytes, 1 << 16), [TensorDecodeError])
    if (t !== undefined) assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1))
  }), FUZZ)
})
