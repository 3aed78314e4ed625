import type { ModelMetadata } from '../../engine/types.js'
import type { ModelCard } from '../../planner/index.js'
import type { ModelId } from '../../shared/ids.js'

/**
 * The planner's view of a model from its GGUF metadata: per-layer weights, embeddings (first
 * stage), output (last stage) and the KV cache of `contextSize` cells per layer (the engine reports
 * its f16 K+V bytes per token per layer, which accounts for head sizes that differ from nEmbd / nHead).
 */
export function modelCardFromMetadata (id: ModelId, metadata: ModelMetadata, contextSize: number, stageOverheadBytes = 0): ModelCard {
  return {
    id,
    nLayers: metadata.nLayers,
    layerBytes: metadata.layerBytes,
    embeddingBytes: metadata.embeddingBytes,
    outputBytes: metadata.outputBytes,
    kvBytesPerTokenPerLayer: metadata.kvBytesPerTokenPerLayer,
    contextSize,
    stageOverheadBytes
  }
}
