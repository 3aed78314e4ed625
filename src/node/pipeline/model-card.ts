import { slidingWindowKvCells } from '../../engine/index.js'
import type { ModelMetadata } from '../../engine/types.js'
import type { ModelCard } from '../../planner/index.js'
import type { ModelId } from '../../shared/ids.js'

/** Tokens per graph when prefilling (the engine's micro-batch, src/engine/shard-session.ts UBATCH). */
const PREFILL_UBATCH = 512

type ComputeShape = Pick<ModelMetadata, 'nEmbd' | 'nFf' | 'nHead' | 'nVocab' | 'kvBytesPerTokenPerLayer' | 'activationFloatsPerToken'>

/**
 * Compute-buffer bytes every stage holds whatever its layer count: the graph of a full prefill chunk
 * (n tokens) at the end of the context, where the attention mask (and, without flash attention, the KQ
 * scores) spans every cell. Activations ≈ n·4·(3·nFf + 4·nEmbd) (FFN gate/up/act and the residual
 * stream, with a margin), or n·4·activationFloatsPerToken where the engine reports more (MLA, MoE);
 * attention: the f16 mask cells·n·2 with flash attention, else the f32 scores cells·n·nHead·4 and an f32 mask.
 */
export function stageComputeBytes (m: ComputeShape, contextSize: number, flashAttention: boolean): number {
  const n = Math.min(PREFILL_UBATCH, contextSize)
  // the engine allocates KV cells in multiples of 256 (as llama.cpp pads n_ctx)
  const cells = Math.ceil(contextSize / 256) * 256
  // the engine reports the width where an architecture's temporaries are wider (MLA attention, MoE experts)
  const activations = n * 4 * Math.max(3 * m.nFf + 4 * m.nEmbd, m.activationFloatsPerToken ?? 0)
  const logits = m.nVocab * 4
  const attention = flashAttention ? cells * n * 2 : cells * n * (4 * m.nHead + 4)
  return activations + logits + attention
}

/** Compute-buffer bytes per layer of a stage: the chunk's f32 K and V before they are written to the f16 cache. */
export function layerComputeBytes (m: ComputeShape, contextSize: number): number {
  // kvBytesPerTokenPerLayer = 2 (K, V) · nEmbdKv · 2 bytes (f16); the f32 copies of n tokens are twice that per token
  return 2 * Math.min(PREFILL_UBATCH, contextSize) * m.kvBytesPerTokenPerLayer
}

/**
 * An upper bound of the ggml compute buffer of a stage of `layers` layers (bytes). A pure function of
 * the metadata, so every node computes the same model card (plan agreement); test/model checks it
 * against the engine's real buffers.
 */
export function computeBufferBytes (m: ComputeShape, contextSize: number, flashAttention: boolean, layers: number): number {
  return stageComputeBytes(m, contextSize, flashAttention) + layers * layerComputeBytes(m, contextSize)
}

/**
 * KV bytes of each layer for a session of `contextSize` tokens: contextSize cells for full-attention layers,
 * the bounded ring of the engine's sliding-window cache (at most contextSize) for sliding-window layers.
 */
export function kvBytesPerLayer (m: Pick<ModelMetadata, 'nLayers' | 'kvBytesPerTokenPerLayer' | 'swaWindow'>, contextSize: number): number[] {
  return Array.from({ length: m.nLayers }, (_, il) => {
    const w = m.swaWindow?.[il] ?? 0
    return m.kvBytesPerTokenPerLayer * (w > 0 ? Math.min(contextSize, slidingWindowKvCells(contextSize, w)) : contextSize)
  })
}

/**
 * The planner's view of a model from its GGUF metadata: per-layer weights, embeddings (first
 * stage), output (last stage), the KV cache of `contextSize` cells per layer (the engine reports
 * its f16 K+V bytes per token per layer, which accounts for head sizes that differ from nEmbd / nHead),
 * and each stage's compute buffer (`computeBufferBytes`: a fixed part per stage, a part per layer).
 * Host and device memory are counted apart by the planner (src/planner/cost-model.ts): an offloaded layer's
 * weights, KV and per-layer part go to the device, and a stage that offloads holds the fixed part twice —
 * once on the device (its graph's device ops) and once on the host (the ops left to the CPU, the
 * hidden state in and out): an upper bound of each of ggml_backend_sched's per-backend buffers.
 */
export function modelCardFromMetadata (id: ModelId, metadata: ModelMetadata, contextSize: number, flashAttention: boolean): ModelCard {
  return {
    id,
    nLayers: metadata.nLayers,
    layerBytes: metadata.layerBytes,
    embeddingBytes: metadata.embeddingBytes,
    outputBytes: metadata.outputBytes,
    kvBytesPerTokenPerLayer: metadata.kvBytesPerTokenPerLayer,
    ...(metadata.swaWindow !== undefined ? { kvBytesPerLayer: kvBytesPerLayer(metadata, contextSize) } : {}),
    contextSize,
    stageOverheadBytes: stageComputeBytes(metadata, contextSize, flashAttention),
    layerOverheadBytes: layerComputeBytes(metadata, contextSize)
  }
}
