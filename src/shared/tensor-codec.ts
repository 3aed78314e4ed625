import { TensorDecodeError, TensorEncodeError } from './errors/tensor-errors.js'
import { f16BitsToF32, f32ToF16Bits } from './float16.js'
import { DType, DTYPE_BYTES, elementCount } from './tensor.js'
import type { Shape, Tensor } from './tensor.js'

/** Default cap on elements in one decoded tensor: 64 Mi (256 MiB of f32). */
export const MAX_TENSOR_ELEMENTS = 64 * 1024 * 1024
const MAX_DIMS = 4

/** Bytes of the header for a tensor of `ndim` dimensions. */
export function tensorHeaderBytes (ndim: number): number {
  return 4 + 4 * ndim
}

/** True on little-endian hosts: f32 data then goes to and from the wire as whole byte blocks. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** Bytes `encodeTensor` produces for this shape and dtype. */
export function encodedTensorBytes (shape: Shape, dtype: DType = DType.F32): number {
  return tensorHeaderBytes(shape.length) + elementCount(shape) * DTYPE_BYTES[dtype]
}

/**
 * Encodes a tensor per protocols/tensor.md.
 * @param data (Π shape) f32, row-major
 */
export function encodeTensor (shape: Shape, data: Float32Array, dtype: DType = DType.F32): Uint8Array {
  const out = new Uint8Array(encodedTensorBytes(shape, dtype))
  encodeTensorInto(out, 0, shape, data, dtype)
  return out
}

/**
 * Encodes a tensor into `out` at `offset` (so a frame can be built in one buffer).
 * @param data (Π shape) f32, row-major
 * @returns the offset after the tensor
 */
export function encodeTensorInto (out: Uint8Array, offset: number, shape: Shape, data: Float32Array, dtype: DType = DType.F32): number {
  if (shape.length < 1 || shape.length > MAX_DIMS) throw new TensorEncodeError(`ndim ${shape.length} not in [1, ${MAX_DIMS}]`)
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 1 || d > 0xffffffff) throw new TensorEncodeError(`dimension ${d} is not an integer in [1, 2^32)`)
  }
  const n = elementCount(shape)
  if (n !== data.length) throw new TensorEncodeError(`shape [${shape.join(', ')}] has ${n} elements but data has ${data.length}`)
  if (dtype !== DType.F32 && dtype !== DType.F16) throw new TensorEncodeError(`unknown dtype ${String(dtype)}`)
  const headerBytes = tensorHeaderBytes(shape.length)
  const end = offset + headerBytes + n * DTYPE_BYTES[dtype]
  if (end > out.byteLength) throw new TensorEncodeError(`the tensor needs ${end - offset} bytes at offset ${offset}, the buffer has ${out.byteLength}`)
  const view = new DataView(out.buffer, out.byteOffset + offset, end - offset)
  view.setUint8(0, dtype)
  view.setUint8(1, shape.length)
  view.setUint16(2, 0, true)
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, true))
  if (dtype === DType.F32) {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(data.buffer, data.byteOffset, 4 * n), offset + headerBytes)
    else for (let i = 0; i < n; i++) view.setFloat32(headerBytes + 4 * i, data[i]!, true)
  } else {
    for (let i = 0; i < n; i++) view.setUint16(headerBytes + 2 * i, f32ToF16Bits(data[i]!), true)
  }
  return end
}

/** Decodes and validates a tensor (protocols/tensor.md). Never returns a partial tensor. */
export function decodeTensor (bytes: Uint8Array, maxElements = MAX_TENSOR_ELEMENTS): Tensor & { dtype: DType } {
  if (bytes.byteLength < 4) throw new TensorDecodeError(`tensor of ${bytes.byteLength} bytes is shorter than its 4-byte header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const dtype = view.getUint8(0)
  const ndim = view.getUint8(1)
  if (dtype !== DType.F32 && dtype !== DType.F16) throw new TensorDecodeError(`unknown dtype code ${dtype}`)
  if (ndim < 1 || ndim > MAX_DIMS) throw new TensorDecodeError(`ndim ${ndim} not in [1, ${MAX_DIMS}]`)
  if (view.getUint16(2, true) !== 0) throw new TensorDecodeError('reserved header bytes are not zero')
  const headerBytes = tensorHeaderBytes(ndim)
  if (bytes.byteLength < headerBytes) throw new TensorDecodeError(`tensor of ${bytes.byteLength} bytes is shorter than its ${headerBytes}-byte header`)
  const shape: number[] = []
  let n = 1
  for (let i = 0; i < ndim; i++) {
    const d = view.getUint32(4 + 4 * i, true)
    if (d < 1) throw new TensorDecodeError(`dimension ${i} is 0`)
    n *= d
    if (n > maxElements) throw new TensorDecodeError(`tensor has more than the limit of ${maxElements} elements`)
    shape.push(d)
  }
  const expected = headerBytes + n * DTYPE_BYTES[dtype as DType]
  if (bytes.byteLength !== expected) throw new TensorDecodeError(`shape [${shape.join(', ')}] needs ${expected} bytes, got ${bytes.byteLength}`)
  const data = new Float32Array(n)
  if (dtype === DType.F32) {
    if (LITTLE_ENDIAN) {
      // byte copy: the payload need not be 4-byte aligned inside its frame
      new Uint8Array(data.buffer).set(bytes.subarray(headerBytes, expected))
    } else {
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(headerBytes + 4 * i, true)
    }
  } else {
    for (let i = 0; i < n; i++) data[i] = f16BitsToF32(view.getUint16(headerBytes + 2 * i, true))
  }
  return { dtype: dtype as DType, shape, data }
}
