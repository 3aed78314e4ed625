/** How a sliding-window layer masks old cells (llama.cpp's llama_swa_type). */
export type SwaType = 'standard' | 'chunked' | 'symmetric'

/** Everything the graph builders need, read from the GGUF and validated. */
export interface HParams {
  nLayers: number
  nEmbd: number
  nHead: number
  nHeadKv: number
  /** size of one attention head (attention.key_length, default nEmbd / nHead); Q is headDim × nHead wide */
  headDim: number
  nFf: number
  nVocab: number
  contextLength: number
  rmsEps: number
  nRot: number
  ropeFreqBase: number
  ropeFreqScale: number
  nCtxOrig: number
  /** 0 = 1/sqrt(headDim) */
  attentionScale: number
  tiedOutput: boolean
  /** `<arch>.rope.scaling.type` ('none' when absent); only 'none' and 'linear' are applied generically — an arch that supports more (e.g. yarn) reads its own keys in its hparams hook */
  ropeScalingType: string
  /** attention.value_length (default headDim) */
  valueDim: number
  /** expert_count (0 = dense) */
  nExpert: number
  /** expert_used_count: experts routed per token (0 = dense); sizes the mul_mat_id buffer-type trial */
  nExpertUsed: number
  /**
   * Sliding window per layer (0 = the layer attends to the whole context). All sliding-window layers share one
   * window (llama.cpp's n_swa) and one KV cache bounded by it (the iSWA cache). Absent = all 0. Read it through
   * `layerWindow(hp, il)` / `swaWindowOf(hp)` (src/engine/swa-cells.ts).
   */
  swaWindow?: number[]
  /** how sliding-window layers mask (llama.cpp LLAMA_SWA_TYPE_*; 'standard' unless the arch says otherwise) */
  swaType?: SwaType
  /**
   * llama-4 style attention temperature tuning (llama.cpp f_attn_temp_scale / n_attn_temp_floor_scale /
   * f_attn_temp_offset): the graph gets a per-token input (1, 1, nTokens) f32
   * log(floor((pos + offset) / floorScale) + 1) · scale + 1 (LayerContext.attnScale). Absent = none.
   */
  attnTemperature?: { scale: number, floorScale: number, offset: number }
}
