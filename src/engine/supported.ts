import { ARCHITECTURES } from './arch/registry.js'
import { SUPPORTED_WEIGHT_TYPES, ggmlTypeName } from './gguf/ggml-types.js'

export const SUPPORTED_ARCHITECTURES: readonly string[] = [...ARCHITECTURES.keys()]
export const SUPPORTED_TENSOR_TYPES: readonly string[] = [...SUPPORTED_WEIGHT_TYPES].map(ggmlTypeName)
