/** Element types of tensors that cross a stage boundary. Values are the wire codes (protocols/tensor.md). */
export enum DType { F32 = 0, F16 = 1 }

export const DTYPE_BYTES: Readonly<Record<DType, number>> = { [DType.F32]: 4, [DType.F16]: 2 }

/** Shape, outermost first. A hidden state of t tokens and hidden size d is `[t, d]`. */
export type Shape = readonly number[]

export interface TensorHeader {
  dtype: DType
  shape: Shape
}

/** Number of elements of a shape (Π dims). */
export function elementCount (shape: Shape): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

/** Payload bytes of a tensor with this header. */
export function byteLength (header: TensorHeader): number {
  return elementCount(header.shape) * DTYPE_BYTES[header.dtype]
}

/** A decoded tensor: always f32 in memory, row-major. */
export interface Tensor {
  shape: Shape
  /** (Π shape) f32, row-major */
  data: Float32Array
}
