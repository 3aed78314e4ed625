import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeWeightsFrame, encodeWeightsFrame } from '../../../src/protocols/weights/codec.js'
import type { WeightsFrame, WeightsManifest } from '../../../src/protocols/weights/codec.js'
import { CHUNK_BYTES, DATA_PIECE_BYTES, MAX_CHUNKS, MAX_FRAME_BYTES, Provenance, WeightsFrameType } from '../../../src/protocols/weights/constants.js'
import { chooseManifest, chunkRuns, chunksCovering, chunkSpan, sha256, verifyChunk } from '../../../src/protocols/weights/manifest.js'
import { FrameDecoder } from '../../../src/protocols/framing.js'
import type { RawFrame } from '../../../src/protocols/framing.js'
import { ProtocolDecodeError, ProtocolEncodeError, WeightsErrorCode } from '../../../src/shared/errors/protocol-errors.js'
import { prng, randomBytes } from '../../helpers/prng.js'

const CHUNK = 64 * 1024

/** A manifest of `bytes` with chunks of `chunkBytes`. */
function manifestOf (bytes: Uint8Array, chunkBytes = CHUNK, provenance = Provenance.Local, headerBytes = 100): WeightsManifest {
  const n = Math.ceil(bytes.byteLength / chunkBytes)
  const hashes = new Uint8Array(32 * n)
  for (let i = 0; i < n; i++) hashes.set(sha256(bytes.subarray(i * chunkBytes, (i + 1) * chunkBytes)), 32 * i)
  return { fileBytes: bytes.byteLength, headerBytes, chunkBytes, sha256: sha256(bytes), provenance, chunkSha256: hashes }
}

function raw (f: WeightsFrame): RawFrame {
  const frames = new FrameDecoder(MAX_FRAME_BYTES).push(encodeWeightsFrame(f))
  assert.equal(frames.length, 1)
  return frames[0]!
}

const roundTrip = (f: WeightsFrame): WeightsFrame => decodeWeightsFrame(raw(f))
const file = randomBytes(prng(7), 5 * CHUNK + 123)

test('every frame type round-trips', () => {
  const m = manifestOf(file)
  const frames: WeightsFrame[] = [
    { type: 'manifest-request', modelId: 'tiny-q8_0' },
    { type: 'manifest', manifest: m },
    { type: 'range-request', modelId: 'ü-model', sha256: m.sha256, firstChunk: 3, chunkCount: 16 },
    { type: 'data', chunkIndex: 5, offset: 1 << 20, bytes: file.subarray(0, 4096) },
    { type: 'error', code: WeightsErrorCode.FileChanged, message: 'changed: 12 ≠ 13' }
  ]
  for (const f of frames) assert.deepEqual(roundTrip(f), f)
})

test('manifest layout: little-endian u64 sizes, chunk count, hashes', () => {
  const m = manifestOf(file)
  const r = raw({ type: 'manifest', manifest: m })
  assert.equal(r.type, WeightsFrameType.Manifest)
  const v = new DataView(r.body.buffer, r.body.byteOffset, r.body.byteLength)
  assert.equal(Number(v.getBigUint64(0, true)), file.byteLength)
  assert.equal(Number(v.getBigUint64(8, true)), 100)
  assert.equal(v.getUint32(16, true), CHUNK)
  assert.equal(r.body[20 + 32], Provenance.Local)
  assert.equal(v.getUint32(53, true), 6)
  assert.equal(r.body.byteLength, 57 + 6 * 32)
})

test('a manifest whose chunk count or fields do not add up is malformed', () => {
  const m = manifestOf(file)
  const r = raw({ type: 'manifest', manifest: m })
  const bad = (mutate: (b: Uint8Array, v: DataView) => void): void => {
    const body = r.body.slice()
    mutate(body, new DataView(body.buffer))
    assert.throws(() => decodeWeightsFrame({ type: r.type, body }), ProtocolDecodeError)
  }
  bad((_, v) => { v.setUint32(53, 5, true) }) // chunk count ≠ ceil(size / chunk)
  bad((_, v) => { v.setUint32(16, CHUNK + 1, true) }) // not a power of two
  bad((_, v) => { v.setBigUint64(8, BigInt(file.byteLength + 1), true) }) // header beyond the file
  bad((b) => { b[52] = 3 }) // unknown provenance
  bad((_, v) => { v.setBigUint64(0, 2n ** 60n, true) }) // ≥ 2^53
  assert.throws(() => decodeWeightsFrame({ type: r.type, body: r.body.subarray(0, r.body.byteLength - 1) }), ProtocolDecodeError)
  assert.throws(() => decodeWeightsFrame({ type: r.type, body: new Uint8Array([...r.body, 0]) }), ProtocolDecodeError)
})

test('encoder refuses what the decoder would reject', () => {
  const m = manifestOf(file)
  assert.throws(() => encodeWeightsFrame({ type: 'manifest', manifest: { ...m, chunkSha256: m.chunkSha256.subarray(32) } }), ProtocolEncodeError)
  assert.throws(() => encodeWeightsFrame({ type: 'range-request', modelId: 'm', sha256: m.sha256, firstChunk: 0, chunkCount: 17 }), ProtocolEncodeError)
  assert.throws(() => encodeWeightsFrame({ type: 'range-request', modelId: 'x'.repeat(129), sha256: m.sha256, firstChunk: 0, chunkCount: 1 }), ProtocolEncodeError)
  assert.throws(() => encodeWeightsFrame({ type: 'data', chunkIndex: 0, offset: 0, bytes: new Uint8Array(DATA_PIECE_BYTES + 1) }), ProtocolEncodeError)
  // the largest manifest fits one frame
  const big: WeightsManifest = { fileBytes: MAX_CHUNKS * CHUNK_BYTES, headerBytes: 1, chunkBytes: CHUNK_BYTES, sha256: new Uint8Array(32), provenance: Provenance.Hub, chunkSha256: new Uint8Array(32 * MAX_CHUNKS) }
  assert.equal((roundTrip({ type: 'manifest', manifest: big }) as { manifest: WeightsManifest }).manifest.fileBytes, big.fileBytes)
  assert.throws(() => encodeWeightsFrame({ type: 'manifest', manifest: { ...big, fileBytes: big.fileBytes + 1 } }), ProtocolEncodeError)
})

test('unknown frame types, empty model ids and oversized error messages are malformed; unknown error codes read as INTERNAL', () => {
  assert.throws(() => decodeWeightsFrame({ type: 9, body: new Uint8Array(1) }), ProtocolDecodeError)
  assert.throws(() => decodeWeightsFrame({ type: WeightsFrameType.ManifestRequest, body: Uint8Array.of(0) }), ProtocolDecodeError)
  assert.throws(() => decodeWeightsFrame({ type: WeightsFrameType.Data, body: new Uint8Array(8) }), ProtocolDecodeError)
  const e = raw({ type: 'error', code: WeightsErrorCode.Busy, message: 'é'.repeat(2000) })
  const decoded = decodeWeightsFrame(e)
  assert.equal(decoded.type === 'error' && Buffer.byteLength(decoded.message) <= 1024, true)
  const body = e.body.slice()
  new DataView(body.buffer).setUint16(0, 77, true)
  assert.deepEqual((decodeWeightsFrame({ type: e.type, body }) as { code: number }).code, WeightsErrorCode.Internal)
})

test('chunk spans, covering chunks and runs', () => {
  const m = manifestOf(file)
  assert.deepEqual(chunkSpan(m, 5), { start: 5 * CHUNK, end: 5 * CHUNK + 123 })
  assert.deepEqual(chunksCovering(m, [{ offset: 0, bytes: 100 }]), [0])
  assert.deepEqual(chunksCovering(m, [{ offset: CHUNK - 1, bytes: 2 }]), [0, 1])
  assert.deepEqual(chunksCovering(m, [{ offset: CHUNK, bytes: CHUNK }]), [1])
  assert.deepEqual(chunksCovering(m, [{ offset: 4 * CHUNK + 5, bytes: 10_000_000 }, { offset: 3, bytes: 0 }, { offset: 10, bytes: 1 }]), [0, 4, 5])
  assert.deepEqual(chunkRuns([0, 1, 2, 4, 5, 9]), [{ first: 0, count: 3 }, { first: 4, count: 2 }, { first: 9, count: 1 }])
  assert.deepEqual(chunkRuns([0, 1, 2, 3, 4], 2), [{ first: 0, count: 2 }, { first: 2, count: 2 }, { first: 4, count: 1 }])
})

test('verifyChunk accepts the exact bytes only', () => {
  const m = manifestOf(file)
  assert.equal(verifyChunk(m, 1, file.slice(CHUNK, 2 * CHUNK)), true)
  assert.equal(verifyChunk(m, 5, file.slice(5 * CHUNK)), true)
  const flipped = file.slice(CHUNK, 2 * CHUNK)
  flipped[1000]! ^= 1
  assert.equal(verifyChunk(m, 1, flipped), false)
  assert.equal(verifyChunk(m, 1, file.slice(CHUNK, 2 * CHUNK - 1)), false)
  assert.equal(verifyChunk(m, 6, new Uint8Array(0)), false)
})

test('chooseManifest: HUB first, else the majority, else the smallest holder id; only holders of that file', () => {
  const a = manifestOf(file)
  const other = manifestOf(randomBytes(prng(8), file.byteLength))
  const hub = { ...a, provenance: Provenance.Hub }
  assert.deepEqual(chooseManifest(new Map([['p3', other], ['p1', a], ['p2', a]]))?.holders, ['p1', 'p2'])
  assert.deepEqual(chooseManifest(new Map([['p1', other], ['p2', a]]))?.holders, ['p1'])
  const withHub = chooseManifest(new Map([['p1', other], ['p2', other], ['p3', hub], ['p4', a]]))
  assert.deepEqual(withHub?.holders, ['p3', 'p4'])
  assert.equal(withHub?.manifest.provenance, Provenance.Hub)
  assert.equal(chooseManifest(new Map()), undefined)
})
