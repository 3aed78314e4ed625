/**
 * `/exo-p2p/weights/1.0.0` and `1.1.0` (bulk path) — model file chunks between peers, verified against a manifest.
 * @packageDocumentation spec: protocols/weights.md
 */
export * from './constants.js'
export { chunkCountOf, dataFrame, decodeWeightsFrame, encodeWeightsFrame, validateManifest } from './codec.js'
export type { BulkRangeRequestFrame, BulkTicketFrame, DataFrame, ManifestFrame, ManifestRequestFrame, RangeRequestFrame, WeightsErrorFrame, WeightsFrame, WeightsManifest } from './codec.js'
export { bytesEqual, chooseManifest, chunkCount, chunkRuns, chunksCovering, chunkSpan, hex, manifestsEqual, sha256, verifyChunk } from './manifest.js'
export type { ByteRange, ChunkRun } from './manifest.js'
export { createWeightsHandler } from './handler.js'
export type { WeightsHandlerOptions, WeightsReader, WeightsServeStats, WeightsSource } from './handler.js'
export { receiveChunks, requestChunks, requestManifest } from './client.js'
export type { OnChunk } from './client.js'
export { requestChunksBulk } from './bulk-client.js'
export type { BulkRequestOptions } from './bulk-client.js'
export { BulkServer } from './bulk-server.js'
export { connectBulk } from './bulk-records.js'
