import type { ModelMetadata } from '../../engine/types.js'
import type { ModelCard } from '../../planner/index.js'
import type { ModelId } from '../../shared/ids.js'

/** Bytes per KV cell of the engine's cache: K and V, f16 (DESIGN.md "Engine": F16 K/V cache per owned layer). */
const KV_ELEMENT_BYTES = 2

/**
 * The planner's view of a model from its GGUF metadata: per-layer weights, embeddings (first
 * stage), output (last stage) and the KV cache of `contextSize` cells per layer:
 * 2 (K and V) × nHeadKv × (nEmbd / nHead) × 2 bytes per token per layer.
 */
export function modelCardFromMetadata (id: ModelId, metadata: ModelMetadata, contextSize: number, stageOverheadBytes = 0): ModelCard {
  const headDim = metadata.nEmbd / metadata.nHead
  return {
    id,
    nLayers: metadata.nLayers,
    layerBytes: metadata.layerBytes,
    embeddingBytes: metadata.embeddingBytes,
    outputBytes: metadata.outputBytes,
    kvBytesPerTokenPerLayer: 2 * metadata.nHeadKv * headDim * KV_ELEMENT_BYTES,
    contextSize,
    stageOverheadBytes
  }
}
