import { ExoError } from './exo-error.js'

/** Bytes that are not a valid tensor encoding (protocols/tensor.md). */
export class TensorDecodeError extends ExoError {
  readonly code = 'TENSOR_DECODE'
}

/** A tensor that cannot be encoded (bad shape, data length mismatch). */
export class TensorEncodeError extends ExoError {
  readonly code = 'TENSOR_ENCODE'
}
