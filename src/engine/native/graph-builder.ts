/**
 * A ggml graph under construction: one no_alloc context for the op tensors plus the cgraph.
 * Methods mirror the ggml ops llama.cpp's graph code uses; arguments are validated by the callers.
 */
import { GGML_PREC_F32, freeContext, ggml, newContext, newTensor } from './ggml.js'
import type { Ptr, Tensor } from './ggml.js'

export class GraphBuilder {
  readonly ctx: Ptr
  readonly graph: Ptr
  private readonly l = ggml()
  /** the layer being built (-1 outside layers): rms_norm results are recorded per layer (llama.cpp's "norm" callback) */
  layer = -1
  readonly norms: Array<{ t: Tensor, il: number }> = []

  constructor (readonly maxNodes: number) {
    const l = this.l
    this.ctx = newContext(maxNodes, Number(l.ggml_graph_overhead_custom(maxNodes, false)))
    this.graph = l.ggml_new_graph_custom(this.ctx, maxNodes, false) as Ptr
  }

  free (): void { freeContext(this.ctx) }

  input (type: number, ne: readonly number[], name: string): Tensor {
    const t = newTensor(this.ctx, type, ne, name)
    this.l.ggml_set_input(t)
    return t
  }

  output (t: Tensor): Tensor { this.l.ggml_set_output(t); return t }
  expand (t: Tensor): void { this.l.ggml_build_forward_expand(this.graph, t) }
  nNodes (): number { return this.l.ggml_graph_n_nodes(this.graph) as number }

  getRows (a: Tensor, rows: Tensor): Tensor { return this.l.ggml_get_rows(this.ctx, a, rows) as Tensor }
  mulMat (w: Tensor, x: Tensor): Tensor { return this.l.ggml_mul_mat(this.ctx, w, x) as Tensor }
  add (a: Tensor, b: Tensor): Tensor { return this.l.ggml_add(this.ctx, a, b) as Tensor }
  mul (a: Tensor, b: Tensor): Tensor { return this.l.ggml_mul(this.ctx, a, b) as Tensor }
  rmsNorm (a: Tensor, eps: number): Tensor {
    const t = this.l.ggml_rms_norm(this.ctx, a, eps) as Tensor
    if (this.layer >= 0) this.norms.push({ t, il: this.layer })
    return t
  }
  swigluSplit (gate: Tensor, up: Tensor): Tensor { return this.l.ggml_swiglu_split(this.ctx, gate, up) as Tensor }
  // ops for dense families (gemma2/3, phi3, mistral3): add below
  // (scale, view3d and gegluSplit are in the MoE section)
  tanh (a: Tensor): Tensor { return this.l.ggml_tanh(this.ctx, a) as Tensor }
  /** swiglu of a fused [gate; up] tensor: silu(first half of ne0) * second half */
  swiglu (a: Tensor): Tensor { return this.l.ggml_swiglu(this.ctx, a) as Tensor }

  // end of dense-family ops
  setRows (dst: Tensor, src: Tensor, idx: Tensor): Tensor { return this.l.ggml_set_rows(this.ctx, dst, src, idx) as Tensor }
  reshape2d (a: Tensor, ne0: number, ne1: number): Tensor { return this.l.ggml_reshape_2d(this.ctx, a, ne0, ne1) as Tensor }
  reshape3d (a: Tensor, ne0: number, ne1: number, ne2: number): Tensor { return this.l.ggml_reshape_3d(this.ctx, a, ne0, ne1, ne2) as Tensor }
  view2d (a: Tensor, ne0: number, ne1: number, nb1: number, offset: number): Tensor {
    return this.l.ggml_view_2d(this.ctx, a, ne0, ne1, nb1, offset) as Tensor
  }

  view4d (a: Tensor, ne: readonly [number, number, number, number], nb1: number, nb2: number, nb3: number, offset: number): Tensor {
    return this.l.ggml_view_4d(this.ctx, a, ne[0], ne[1], ne[2], ne[3], nb1, nb2, nb3, offset) as Tensor
  }

  permute (a: Tensor, a0: number, a1: number, a2: number, a3: number): Tensor { return this.l.ggml_permute(this.ctx, a, a0, a1, a2, a3) as Tensor }
  transpose (a: Tensor): Tensor { return this.l.ggml_transpose(this.ctx, a) as Tensor }
  cont2d (a: Tensor, ne0: number, ne1: number): Tensor { return this.l.ggml_cont_2d(this.ctx, a, ne0, ne1) as Tensor }
  // ops for mixture of experts: add below
  /** (k, ne1, ...) i32: indices of the k largest values of each row, descending (argsort + view, as llama.cpp) */
  argsortTopK (a: Tensor, k: number): Tensor { return this.l.ggml_argsort_top_k(this.ctx, a, k) as Tensor }
  /** as: (ne0, rows, nExpert) weights; b: (ne0, nUsed or 1, nTokens); ids: (nUsed, nTokens) i32 → (rows, nUsed, nTokens) */
  mulMatId (as: Tensor, b: Tensor, ids: Tensor): Tensor { return this.l.ggml_mul_mat_id(this.ctx, as, b, ids) as Tensor }
  /** a: (ne0, nUsed, nTokens); b: (ne0, nExpert) per-expert bias; ids: (nUsed, nTokens) i32 */
  addId (a: Tensor, b: Tensor, ids: Tensor): Tensor { return this.l.ggml_add_id(this.ctx, a, b, ids) as Tensor }
  softMax (a: Tensor): Tensor { return this.l.ggml_soft_max(this.ctx, a) as Tensor }
  sigmoid (a: Tensor): Tensor { return this.l.ggml_sigmoid(this.ctx, a) as Tensor }
  sumRows (a: Tensor): Tensor { return this.l.ggml_sum_rows(this.ctx, a) as Tensor }
  clamp (a: Tensor, min: number, max: number): Tensor { return this.l.ggml_clamp(this.ctx, a, min, max) as Tensor }
  div (a: Tensor, b: Tensor): Tensor { return this.l.ggml_div(this.ctx, a, b) as Tensor }
  scale (a: Tensor, s: number): Tensor { return this.l.ggml_scale(this.ctx, a, s) as Tensor }
  fill (a: Tensor, c: number): Tensor { return this.l.ggml_fill(this.ctx, a, c) as Tensor }
  view3d (a: Tensor, ne0: number, ne1: number, ne2: number, nb1: number, nb2: number, offset: number): Tensor {
    return this.l.ggml_view_3d(this.ctx, a, ne0, ne1, ne2, nb1, nb2, offset) as Tensor
  }

  reshape4d (a: Tensor, ne0: number, ne1: number, ne2: number, ne3: number): Tensor { return this.l.ggml_reshape_4d(this.ctx, a, ne0, ne1, ne2, ne3) as Tensor }
  repeat4d (a: Tensor, ne0: number, ne1: number, ne2: number, ne3: number): Tensor { return this.l.ggml_repeat_4d(this.ctx, a, ne0, ne1, ne2, ne3) as Tensor }
  cont (a: Tensor): Tensor { return this.l.ggml_cont(this.ctx, a) as Tensor }
  silu (a: Tensor): Tensor { return this.l.ggml_silu(this.ctx, a) as Tensor }
  gelu (a: Tensor): Tensor { return this.l.ggml_gelu(this.ctx, a) as Tensor }
  gegluSplit (a: Tensor, b: Tensor): Tensor { return this.l.ggml_geglu_split(this.ctx, a, b) as Tensor }
  swigluOai (a: Tensor, b: Tensor, alpha: number, limit: number): Tensor { return this.l.ggml_swiglu_oai(this.ctx, a, b, alpha, limit) as Tensor }
  /** attention sinks (gpt-oss): one f32 logit per head joins the softmax of `kq` (a soft_max_ext result) */
  softMaxAddSinks (kq: Tensor, sinks: Tensor): void { this.l.ggml_soft_max_add_sinks(kq, sinks) }
  /** attention sinks on a flash_attn_ext result */
  flashAttnAddSinks (fa: Tensor, sinks: Tensor): void { this.l.ggml_flash_attn_ext_add_sinks(fa, sinks) }

  // end of MoE ops

  ropeExt (a: Tensor, pos: Tensor, freqFactors: Tensor | null, p: { nDims: number, mode: number, nCtxOrig: number, freqBase: number, freqScale: number, extFactor: number, attnFactor: number, betaFast: number, betaSlow: number }): Tensor {
    return this.l.ggml_rope_ext(this.ctx, a, pos, freqFactors, p.nDims, p.mode, p.nCtxOrig, p.freqBase, p.freqScale, p.extFactor, p.attnFactor, p.betaFast, p.betaSlow) as Tensor
  }

  // ops for deepseek2 (multi-head latent attention): add below
  /** a and b joined along dimension `dim` (the other dimensions must match) */
  concat (a: Tensor, b: Tensor, dim: number): Tensor { return this.l.ggml_concat(this.ctx, a, b, dim) as Tensor }
  /** rotate dims [nOffs, nOffs + n_dims) of a rope_ext result instead of [0, n_dims) (nOffs even, nOffs + n_dims <= ne0) */
  ropeSetOffset (rope: Tensor, nOffs: number): Tensor { return this.l.ggml_rope_set_offset(rope, nOffs) as Tensor }

  // end of deepseek2 ops

  /** softmax(kq * scale + mask) with F32 accumulation of kq (as llama.cpp). */
  mulMatF32 (a: Tensor, b: Tensor): Tensor {
    const t = this.mulMat(a, b)
    this.l.ggml_prec_set_acc(t, GGML_PREC_F32)
    return t
  }

  softMaxExt (a: Tensor, mask: Tensor, scale: number, maxBias: number): Tensor {
    return this.l.ggml_soft_max_ext(this.ctx, a, mask, scale, maxBias) as Tensor
  }

  flashAttnExt (q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: number, softcap = 0): Tensor {
    const t = this.l.ggml_flash_attn_ext(this.ctx, q, k, v, mask, scale, 0, softcap) as Tensor
    this.l.ggml_flash_attn_ext_set_n_kv_max(t, 0)
    this.l.ggml_prec_set_acc(t, GGML_PREC_F32)
    return t
  }
}
