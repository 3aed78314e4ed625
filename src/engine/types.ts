/**
 * The engine's public contract (owned by src/engine). Everything outside src/engine sees only these types.
 *
 * Tensor boundary: a hidden state of t tokens is (t, nEmbd) f32 row-major, i.e. ggml ne = [nEmbd, t].
 */

/** Which layers a shard runs: half-open [start, end). */
export interface LayerRange { start: number, end: number }

export interface ModelMetadata {
  architecture: string
  nLayers: number
  nEmbd: number
  nVocab: number
  nHead: number
  nHeadKv: number
  nFf: number
  contextLength: number
  /** bytes of every tensor per layer index, plus embedding/output tensors: used by the planner */
  layerBytes: number[]
  embeddingBytes: number
  outputBytes: number
  fileBytes: number
  /** KV-cache bytes per token per layer (F16 K + V): a session of C cells on L layers holds C × L × this */
  kvBytesPerTokenPerLayer: number
  /**
   * f32 values per token that one layer's graph holds at once (residual stream plus the widest of its attention /
   * FFN temporaries); set by architectures whose temporaries outgrow 3·nFf + 4·nEmbd (MLA, MoE). The planner's
   * compute-buffer bound uses it (src/node/pipeline/model-card.ts).
   */
  activationFloatsPerToken?: number
  /**
   * Sliding window per layer (0 = the layer attends to the whole context); absent when no layer slides. A
   * sliding-window layer's KV cache holds `slidingWindowKvCells(contextSize, window)` cells, not contextSize.
   */
  swaWindow?: number[]
}

export interface ShardOptions {
  modelPath: string
  range: LayerRange
  /** CPU threads for compute. Always explicit (see DESIGN.md). */
  threads: number
  /** ggml_flash_attn_ext instead of mul_mat + softmax (default false). Use the same value on every stage. */
  flashAttention?: boolean
  /**
   * Offload the shard's LAST `gpuLayers` layers (weights and KV cache) to the GPU device chosen with
   * selectComputeBackend; the graph runs on both through ggml_backend_sched. Absent = a CPU-only shard; 0 =
   * no layer on the device, but the scheduler and the device's host buffers are used, as llama.cpp does on a
   * GPU build with n_gpu_layers 0.
   */
  gpuLayers?: number
  /** last shard: output norm + output matmul on the device (default: gpuLayers > 0; llama.cpp offloads the output first) */
  gpuOutput?: boolean
  /**
   * llama.cpp's full_offload: the WHOLE model (every stage's layers and the output) runs on GPUs; with it, a
   * layer's norms are pinned to the layer's device for every batch size, not only below 32 tokens (this changes
   * which backend runs a boundary norm, so the numbers). Default: this shard offloads all its layers (and the output).
   */
  gpuFullOffload?: boolean
  /**
   * Keep the pages of the sequences that compute at the bottom of the shard's KV store, idle ones (retained
   * prefixes, streams waiting on other stages) above them, and let each sequence of a batched step attend over
   * its own cells only, so a step's graph spans about the cells it uses (default true; false: pages never move
   * and every token of a step attends over all the step's cells — for measurements).
   */
  kvCompaction?: boolean
}

export interface SessionOptions {
  /** KV cache cells (max prompt + generated tokens). Allocated rounded up to a multiple of 256, F16, per owned layer. */
  contextSize: number
}

/** Input of a forward pass: token ids on the first shard, the previous shard's hidden state otherwise. */
export type ForwardInput =
  | { kind: 'tokens', tokens: Int32Array }
  /** (nTokens, nEmbd) f32 */
  | { kind: 'hidden', hidden: Float32Array, nTokens: number }

export type ForwardOutput =
  /** (nTokens, nEmbd) f32 — not the last shard */
  | { kind: 'hidden', hidden: Float32Array, nTokens: number }
  /** (nRows, nVocab) f32 — last shard; rows for the requested positions only */
  | { kind: 'logits', logits: Float32Array, nRows: number }

export interface ForwardOptions {
  signal?: AbortSignal
  /** last shard only (ignored elsewhere): `last` = logits of the last token only (default), `all` = every token */
  logits?: 'last' | 'all'
  /**
   * Stages this sequence's decode steps travel through (default 1). A shard batches the pending forwards of all
   * its sequences into one graph per step; with depth S it runs the decoding sequences of a pipeline in S groups,
   * so that while one stage computes a group's next step the others compute other groups'.
   */
  pipelineDepth?: number
  /**
   * The caller reads (or copies) the output before the event loop turns, so it may be a view of a buffer the shard
   * reuses: a later step writes there only after its compute, which always yields to the event loop first. A step
   * whose forwards all borrow allocates no output (on a last shard, rows of nVocab logits, ~0.5 MB per step of 4
   * streams: in some runs without it V8 ran a full mark-compact every ~0.6 s). Default false: the output is the caller's.
   */
  borrowOutput?: boolean
}

/**
 * One request's KV cache on one shard: its own cells in the shard's shared KV store. `forward` evaluates any
 * number of tokens at positions [position, position + n); compute runs off the event loop. Forwards of all
 * sessions of a shard pending at once are evaluated together, one graph per step (continuous batching: a
 * sequence alone gets graphs of ≤ 512 tokens, like llama.cpp's ubatch; together, decode tokens plus prefill
 * chunks of ≤ 256 tokens each); each session's results are those of running it alone. Errors (typed, see
 * src/shared/errors/engine-errors.ts) leave `position` unchanged.
 */
export interface ShardSession {
  /** tokens already in the cache */
  readonly position: number
  readonly contextSize: number
  forward (input: ForwardInput, options?: ForwardOptions): Promise<ForwardOutput>
  /** Drop cached tokens from `position` on (for re-prefill / retry). */
  truncate (position: number): void
  dispose (): void
}

export interface LoadedShard {
  readonly metadata: ModelMetadata
  readonly range: LayerRange
  readonly isFirst: boolean
  readonly isLast: boolean
  /** bytes of weights loaded for this shard */
  readonly weightBytes: number
  /** the files weights were read from: for a split model only the parts holding this shard's tensors */
  readonly weightFiles?: readonly string[]
  createSession (options: SessionOptions): ShardSession
  dispose (): Promise<void>
}

/** One GPU device of the loaded backend (ggml_backend_dev_*; bytes). */
export interface GpuDeviceInfo {
  /** index among the backend's devices (`--gpu-device`) */
  index: number
  /** ggml's device name, e.g. "Vulkan0" */
  name: string
  /** e.g. "NVIDIA H200" */
  description: string
  totalBytes: number
  /** free when the backend was selected */
  freeBytes: number
}

/** The backend a process computes on: its package ('cpu' = none), the device offloaded layers use, all devices found. */
export interface ComputeBackendInfo {
  backend: 'cpu' | 'cuda' | 'vulkan' | 'metal'
  device: GpuDeviceInfo | undefined
  devices: GpuDeviceInfo[]
}
