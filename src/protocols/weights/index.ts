/**
 * `/exo-p2p/weights/1.0.0` — model file chunks between peers, verified against a manifest.
 * @packageDocumentation spec: protocols/weights.md
 */
export * from './constants.js'
export { chunkCountOf, dataFrame, decodeWeightsFrame, encodeWeightsFrame, validateManifest } from './codec.js'
export type { DataFrame, ManifestFrame, ManifestRequestFrame, RangeRequestFrame, WeightsErrorFrame, WeightsFrame, WeightsManifest } from './codec.js'
export { bytesEqual, chooseManifest, chunkCount, chunkRuns, chunksCovering, chunkSpan, hex, manifestsEqual, sha256, verifyChunk } from './manifest.js'
export type { ByteRange, ChunkRun } from './manifest.js'
export { createWeightsHandler } from './handler.js'
export type { WeightsHandlerOptions, WeightsReader, WeightsServeStats, WeightsSource } from './handler.js'
export { requestChunks, requestManifest } from './client.js'
