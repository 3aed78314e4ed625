/** Public API of the engine (see types.ts for the contract). */
export { loadShard } from './load-shard.js'
export { readModelMetadata } from './model-description.js'
export { SUPPORTED_ARCHITECTURES, SUPPORTED_TENSOR_TYPES } from './supported.js'
export type * from './types.js'
