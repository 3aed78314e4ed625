import type { GraphBuilder } from '../native/graph-builder.js'
import type { Tensor, WeightOp } from '../native/ggml.js'
import type { HParams } from '../hparams.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'

/** A weight the architecture reads: GGUF name, expected ggml shape, owning layer, op it feeds. */
export interface TensorSpec {
  name: string
  ne: number[]
  /** layer index for blk.N.* tensors; undefined for embedding / output tensors */
  layer?: number
  role: 'embedding' | 'layer' | 'output'
  op: WeightOp
  optional?: boolean
}

/**
 * What a layer builder sees while building one forward graph (shapes: ggml order, ne[0] first). A
 * sliding-window layer (hp.swaWindow[il] > 0) gets the context of the sliding-window cache: its nKv, kvCells,
 * cache rows and mask (llama.cpp's iSWA input) — buildAttention needs no change.
 */
export interface LayerContext {
  g: GraphBuilder
  hp: HParams
  /** weight by GGUF name, undefined when absent (optional tensors) */
  w: (name: string) => Tensor | undefined
  nTokens: number
  /** KV cells visible to this graph (padded) */
  nKv: number
  /** KV cells allocated per layer (the shared store's: the cache tensors' row count) */
  kvCells: number
  /** one sequence's own context, padded to 256 cells (llama.cpp's n_ctx_seq); the same for every sequence of the graph (see ArchSpec.contextClass) */
  nCtxSeq: number
  flashAttention: boolean
  /** (nTokens) i32 positions */
  pos: Tensor
  /**
   * set when each sequence of the graph attends over its own span of the cache (batch-inputs.ts SegmentSpan):
   * tokens [row0, row0 + n) over cells [cell0, cell0 + nKv) with their own (nKv, n) mask; buildAttention uses it
   */
  segments?: readonly AttnSegment[]
  /** (nTokens) i64 cache rows for K */
  kIdxs: Tensor
  /** (nTokens) i64 rows (flash attention) or (nTokens * nEmbdKv) i64 elements (transposed V) */
  vIdxs: Tensor
  /** (nKv, nTokens) f32 (f16 with flash attention) causal mask */
  mask: Tensor
  /** (1, 1, nTokens) f32 attention temperature per token, when hp.attnTemperature is set */
  attnScale?: Tensor
  /** (nOut) i32 rows to keep after the model's last layer; undefined unless this shard runs it */
  outIds?: Tensor
  /** per owned layer: K cache (kvWidths.k, kvCells) f16 and V cache (kvWidths.v, kvCells) f16 — no V cache when kvWidths.v is 0 */
  kCache: (il: number) => Tensor
  vCache: (il: number) => Tensor
}

/** One sequence's tokens and cells in a graph whose attention runs per sequence. */
export interface AttnSegment { row0: number, n: number, cell0: number, nKv: number, mask: Tensor }

/**
 * One architecture (one file under src/engine/arch/, named as llama.cpp names it in general.architecture).
 * A new family drops in as a file plus one line in registry.ts.
 */
export interface ArchSpec {
  name: string
  /**
   * Reads and validates the architecture's own hyper-parameters on top of the generic ones; may return a
   * subtype of HParams that the arch's builders cast `c.hp` to. Throws InvalidGgufError / UnsupportedModelError.
   * Default: `denseDecoderHParams` (llama-family checks: no experts, value_length == key_length, full rotary).
   */
  hparams?: (m: MetadataReader, base: HParams) => HParams
  tensors: (hp: HParams) => TensorSpec[]
  /** Per-layer KV cache row widths; default {@link defaultKvWidths}. */
  kvWidths?: (hp: HParams, il: number) => KvWidths
  /** optional: (nEmbd, nTokens) f32 token embeddings (get_rows of token_embd) → layer 0's input (e.g. gemma's × sqrt(n_embd)) */
  buildInput?: (c: LayerContext, embd: Tensor) => Tensor
  /** (nEmbd, nTokens) f32 in → (nEmbd, nTokens or nOut) f32 out */
  buildLayer: (c: LayerContext, il: number, inpL: Tensor) => Tensor
  /** (nEmbd, nOut) f32 → (nVocab, nOut) f32 logits */
  buildOutput: (c: LayerContext, cur: Tensor) => Tensor
  /**
   * Graphs whose result depends on the sequences' context size (phi3's long / short RoPE factors): sequences
   * batch together only when this gives the same value for their padded contexts. Default: any sequences batch.
   */
  contextClass?: (hp: HParams, nCtxSeq: number) => number
  /** upper bound on the ggml tensors / graph nodes one layer creates (default 64; MoE layers need more) */
  nodesPerLayer?: (hp: HParams) => number
  /** upper bound on the f32 values per token a layer's graph holds at once (ModelMetadata.activationFloatsPerToken); default: not reported */
  activationFloatsPerToken?: (hp: HParams) => number | undefined
}

/**
 * f16 elements per KV cell of one layer (llama.cpp's n_embd_k_gqa / n_embd_v_gqa). `v` = 0: the layer keeps no
 * V cache (MLA reads V as a view of the first columns of K).
 */
export interface KvWidths { k: number, v: number }

export function defaultKvWidths (hp: HParams): KvWidths {
  return { k: hp.headDim * hp.nHeadKv, v: hp.valueDim * hp.nHeadKv }
}

/** The KV widths of layer `il` under `arch`. */
export function layerKvWidths (arch: ArchSpec, hp: HParams, il: number): KvWidths {
  return arch.kvWidths?.(hp, il) ?? defaultKvWidths(hp)
}
