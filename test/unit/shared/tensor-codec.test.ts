import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeTensor, encodeTensor } from '../../../src/shared/tensor-codec.js'
import { TensorDecodeError, TensorEncodeError } from '../../../src/shared/errors/tensor-errors.js'
import { f16BitsToF32, f32ToF16Bits } from '../../../src/shared/float16.js'
import { DType } from '../../../src/shared/tensor.js'

test('f32 round trip is bit-exact, including odd values', () => {
  const data = new Float32Array([0, -0, 1.5, -3.25e-38, 3.4e38, Math.PI, NaN, Infinity, 1e-45])
  const bytes = encodeTensor([3, 3], data)
  assert.equal(bytes.byteLength, 4 + 8 + 36)
  const t = decodeTensor(bytes)
  assert.deepEqual(t.shape, [3, 3])
  assert.equal(t.dtype, DType.F32)
  assert.deepEqual(new Uint32Array(t.data.buffer), new Uint32Array(data.buffer))
})

test('f32 decode from an unaligned view', () => {
  const data = new Float32Array([1, 2, 3, 4])
  const enc = encodeTensor([4], data)
  const padded = new Uint8Array(enc.byteLength + 1)
  padded.set(enc, 1)
  assert.deepEqual(Array.from(decodeTensor(padded.subarray(1)).data), [1, 2, 3, 4])
})

test('f16 encodes little-endian and round-trips values representable in f16', () => {
  const data = new Float32Array([1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8])
  const t = decodeTensor(encodeTensor([6], data, DType.F16))
  assert.deepEqual(Array.from(t.data), Array.from(data))
  const one = encodeTensor([1], new Float32Array([1]), DType.F16)
  assert.deepEqual(Array.from(one.subarray(8)), [0x00, 0x3c])
})

test('f16 rounding: nearest even, overflow to inf', () => {
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00) // tie → even
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02) // tie → even (up)
  assert.equal(f32ToF16Bits(70000), 0x7c00)
  assert.equal(f32ToF16Bits(-70000), 0xfc00)
  assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))))
  assert.equal(f16BitsToF32(0x0001), 2 ** -24)
})

test('decode rejects malformed tensors with TensorDecodeError', () => {
  const good = encodeTensor([2, 2], new Float32Array(4))
  const cases: Array<[string, Uint8Array]> = [
    ['empty', new Uint8Array(0)],
    ['short header', good.subarray(0, 6)],
    ['bad dtype', Uint8Array.from([9, ...good.subarray(1)])],
    ['ndim 0', Uint8Array.from([0, 0, 0, 0])],
    ['ndim 5', Uint8Array.from([0, 5, 0, 0, ...new Uint8Array(20)])],
    ['reserved', Uint8Array.from([good[0]!, good[1]!, 1, 0, ...good.subarray(4)])],
    ['truncated payload', good.subarray(0, good.byteLength - 1)],
    ['trailing bytes', Uint8Array.from([...good, 0])],
    ['zero dim', Uint8Array.from([0, 1, 0, 0, 0, 0, 0, 0])]
  ]
  for (const [name, bytes] of cases) {
    assert.throws(() => decodeTensor(bytes), TensorDecodeError, name)
  }
  const huge = new Uint8Array(12)
  new DataView(huge.buffer).setUint8(1, 2)
  new DataView(huge.buffer).setUint32(4, 0xffffffff, true)
  new DataView(huge.buffer).setUint32(8, 0xffffffff, true)
  assert.throws(() => decodeTensor(huge), /limit/)
})

test('encode rejects inconsistent shapes', () => {
  assert.throws(() => encodeTensor([2, 3], new Float32Array(5)), TensorEncodeError)
  assert.throws(() => encodeTensor([], new Float32Array(0)), TensorEncodeError)
  assert.throws(() => encodeTensor([1.5], new Float32Array(1)), TensorEncodeError)
})
