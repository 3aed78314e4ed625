import { tensorNb, tensorNe } from '../native/ggml.js'
import type { Tensor } from '../native/ggml.js'
import type { LayerContext } from './arch-spec.js'

const F16 = 2

/**
 * llama.cpp's build_attn for a K-only cache (llm_graph_input_attn_k) + build_attn_mha with v_mla, one stream:
 * multi-head latent attention in the absorbed form, i.e. MQA over one wide head whose first `dv` columns are V,
 * then the per-head V decompression (wv_b) and the output projection — same ops in the same order.
 * @param q (dk, nHead, nTokens) f32 — [absorbed q_nope | roped q_pe]
 * @param k (dk, 1, nTokens) f32 — [normed kv latent | roped k_pe]; stored in the layer's K cache (dk, cells) f16
 * @param v (dv, 1, nTokens) f32 — the latent (a view of the same values; only its width is used)
 * @param wvB (dv, headDimV, nHead) per-head V decompression
 * @returns (nEmbd, nTokens) f32
 */
export function buildMlaAttention (c: LayerContext, il: number, q: Tensor, k: Tensor, v: Tensor, wo: Tensor, wvB: Tensor, kqScale: number): Tensor {
  const { g, nTokens, nKv, kvCells } = c
  const [dk, nHead] = tensorNe(q)
  const dv = tensorNe(v)[0]
  g.expand(q)
  g.expand(v)
  g.expand(k)

  const kCache = c.kCache(il)
  // cpy_k: merge dims 0 and 1 of k (one head), rows kIdxs
  g.expand(g.setRows(kCache, g.view2d(k, dk, nTokens, tensorNb(k)[2], 0), c.kIdxs))

  // get_k: (dk, 1, nKv, 1); V: the first dv columns of the same cells
  const kk = g.view4d(kCache, [dk, 1, nKv, 1], F16 * dk, F16 * dk, F16 * dk * kvCells, 0)
  const vv = g.view4d(kk, [dv, 1, nKv, 1], F16 * dk, F16 * dk, F16 * dk * kvCells, 0)

  // build_attn_mha (n_stream = 1)
  const qNb = tensorNb(q)
  let qq = g.view4d(q, [dk, nHead, nTokens, 1], qNb[1], qNb[2], qNb[3], 0)
  qq = g.permute(qq, 0, 2, 1, 3)
  const kp = g.permute(kk, 0, 2, 1, 3)
  let vp = g.permute(vv, 0, 2, 1, 3)
  let cur: Tensor
  if (c.flashAttention) {
    // (dv, nHead, nTokens)
    cur = g.flashAttnExt(qq, kp, vp, c.mask, kqScale)
    // decompress as a matrix-matrix product with nTokens in dimension 1 (the permutes only reinterpret)
    cur = g.permute(cur, 0, 2, 1, 3)
    cur = g.mulMat(wvB, cur)
    cur = g.permute(cur, 0, 2, 1, 3)
    cur = g.cont(cur)
    const ne = tensorNe(cur)
    cur = g.reshape2d(cur, ne[0] * ne[1], ne[2] * ne[3])
  } else {
    let kq = g.mulMatF32(kp, qq)
    kq = g.softMaxExt(kq, c.mask, kqScale, 0)
    // V is not stored transposed: llama.cpp makes it contiguous here
    vp = g.cont(g.transpose(vp))
    let kqv = g.mulMat(vp, kq)
    kqv = g.mulMat(wvB, kqv)
    cur = g.permute(kqv, 0, 2, 1, 3)
    const ne = tensorNe(cur)
    cur = g.cont2d(cur, ne[0] * ne[1], ne[2] * ne[3])
  }
  g.expand(cur)
  return g.mulMat(wo, cur)
}
