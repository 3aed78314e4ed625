import assert from 'node:assert/strict'
import { test } from 'node:test'
import { encodeFrame, FrameDecoder } from '../../../src/protocols/framing.js'
import { FrameTooLargeError, ProtocolDecodeError, ProtocolEncodeError } from '../../../src/shared/errors/protocol-errors.js'
import { prng, randomBytes } from '../../helpers/prng.js'

test('frames survive any split of the byte stream', () => {
  const rand = prng(7)
  const bodies = [new Uint8Array(0), randomBytes(rand, 1), randomBytes(rand, 1000), randomBytes(rand, 70_000)]
  const wire = Buffer.concat(bodies.map((b, i) => encodeFrame(i + 1, [b], 1 << 20).subarray()))
  for (let trial = 0; trial < 20; trial++) {
    const dec = new FrameDecoder(1 << 20)
    const got = []
    let off = 0
    while (off < wire.byteLength) {
      const n = 1 + Math.floor(rand() * 5000)
      got.push(...dec.push(wire.subarray(off, off + n)))
      off += n
    }
    assert.equal(got.length, bodies.length)
    got.forEach((f, i) => { assert.equal(f.type, i + 1); assert.deepEqual(Buffer.from(f.body), Buffer.from(bodies[i]!)) })
    assert.equal(dec.bufferedBytes, 0)
  }
})

test('an oversized length prefix fails at once, before the body arrives, and poisons the decoder', () => {
  const dec = new FrameDecoder(100)
  const head = new Uint8Array(4)
  new DataView(head.buffer).setUint32(0, 101, true)
  assert.throws(() => dec.push(head), (e) => e instanceof FrameTooLargeError && e instanceof ProtocolDecodeError && e.frameBytes === 101)
  assert.throws(() => dec.push(new Uint8Array([1])), FrameTooLargeError)
  assert.throws(() => new FrameDecoder(100).push(new Uint8Array([0, 0, 0, 0])), FrameTooLargeError)
})

test('the encoder refuses a frame over the limit', () => {
  assert.throws(() => encodeFrame(1, [new Uint8Array(100)], 100), ProtocolEncodeError)
  assert.equal(encodeFrame(1, [new Uint8Array(99)], 100).byteLength, 104)
})
