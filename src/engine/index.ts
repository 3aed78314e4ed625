/**
 * Public API of the engine (contract types in types.ts; errors in src/shared/errors/engine-errors.ts).
 *
 *   readModelMetadata(path) → ModelMetadata            GGUF header only, pure TypeScript, no native code
 *   loadShard({ modelPath, range, threads, flashAttention }, { signal }) → Promise<LoadedShard>
 *   shard.createSession({ contextSize }) → ShardSession
 *   session.forward({ kind: 'tokens', tokens } | { kind: 'hidden', hidden, nTokens }, { signal, logits }) →
 *     { kind: 'hidden', hidden (t, nEmbd) f32 } on non-last shards, { kind: 'logits', logits (rows, nVocab) f32 } on the last
 *   session.truncate(position), session.dispose(), shard.dispose()
 *
 * Logits are bit-identical to node-llama-cpp 3.22.1 given the same threads and flash-attention setting
 * (pass flashAttention explicitly to node-llama-cpp: its default 'auto' turns it on for CPU) and the same
 * prompt chunking (prompts are evaluated in graphs of 512 tokens, node-llama-cpp's default batch).
 */
export { loadShard, shardFileRanges } from './load-shard.js'
export { GPU_CHOICES, computeBackend, deviceMemory, selectComputeBackend } from './native/devices.js'
export type { ComputeBackend, GpuChoice, NativeDevice } from './native/devices.js'
export { readModelMetadata } from './model-description.js'
export { slidingWindowKvCells } from './swa-cells.js'
export { SUPPORTED_ARCHITECTURES, SUPPORTED_TENSOR_TYPES } from './supported.js'
export type * from './types.js'
