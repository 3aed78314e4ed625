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

/**
 * Encodes a tensor per protocols/tensor.md.
 * @param data (Π shape) f32, row-major
 */
export function encodeTensor (shape: Shape, data: Float32Array, dtype: DType = DType.F32): Uint8Array {
  if (shape.length < 1 || shape.length > MAX_DIMS) throw new TensorEncodeError(`ndim ${shape.length} not in [1, ${MAX_DIMS}]`)
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 1 || d > 0xffffffff) throw new TensorEncodeError(`dimension ${d} is not an integer in [1, 2^32)`)
  }
  const n = elementCount(shape)
  if (n !== data.length) throw new TensorEncodeError(`shape [${shape.join(', ')}] has ${n} elements but data has ${data.length}`)
  const headerBytes = tensorHeaderBytes(shape.length)
  const out = new Uint8Array(headerBytes + n * DTYPE_BYTES[dtype])
  const view = new DataView(out.buffer)
  view.setUint8(0, dtype)
  view.setUint8(1, shape.length)
  view.setUint16(2, 0, true)
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, true))
  if (dtype === DType.F32) {
    for (let i = 0; i < n; i++) view.setFloat32(headerBytes + 4 * i, data[i]!, true)
  } else if (dtype === DType.F16) {
    for (let i = 0; i < n; i++) view.setUint16(headerBytes + 2 * i, f32ToF16Bits(data[i]!), true)
  } else {
    throw new TensorEncodeError(`unknown dtype ${String(dtype)}`)
  }
  return out
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
    if ((bytes.byteOffset + headerBytes) % 4 === 0) {
      data.set(new Float32Array(bytes.buffer, bytes.byteOffset + headerBytes, n))
    } else {
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(headerBytes + 4 * i, true)
    }
  } else {
    for (let i = 0; i < n; i++) data[i] = f16BitsToF32(view.getUint16(headerBytes + 2 * i, true))
  }
  return { dtype: dtype as DType, shape, data }
}
