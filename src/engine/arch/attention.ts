import { GGML_TYPE, tensorNb } from '../native/ggml.js'
import type { Tensor } from '../native/ggml.js'
import type { LayerContext } from './arch-spec.js'

const F16 = 2

/**
 * llama.cpp's build_attn (KV-cache variant) + build_attn_mha for one stream, same ops in the same order:
 * store K/V rows into the cache, attend over the first nKv cells, output projection.
 * @param q (headDim, nHead, nTokens) f32 — after RoPE
 * @param k (headDim, nHeadKv, nTokens) f32 — after RoPE
 * @param v (valueDim, nHeadKv, nTokens) f32 (valueDim = headDim except deepseek2's legacy MHA form)
 * @param softcap attention logit soft-capping (gemma2's attn_soft_cap: softcap · tanh(kq / softcap)); 0 = none
 * @param sinks (nHead) f32 attention sinks (gpt-oss): one extra logit per head in the softmax; undefined = none
 * @returns (nEmbd, nTokens) f32
 */
export function buildAttention (c: LayerContext, il: number, q: Tensor, k: Tensor, v: Tensor, wo: Tensor, woB: Tensor | undefined, kqScale: number, softcap = 0, sinks?: Tensor): Tensor {
  const { g, hp, nTokens, nKv, kvCells } = c
  const { headDim, nHead, nHeadKv } = hp
  const nEmbdKv = headDim * nHeadKv
  const headDimV = hp.valueDim
  const nEmbdV = headDimV * nHeadKv
  const vTrans = !c.flashAttention
  g.expand(q)
  g.expand(v)
  g.expand(k)

  const kCache = c.kCache(il)
  const vCache = c.vCache(il)
  // cpy_k / cpy_v: (nEmbdKv, nTokens) rows into the cache; K/V may be views of a fused QKV (row stride nb[2])
  const kNb2 = tensorNb(k)[2]
  const vNb2 = tensorNb(v)[2]
  g.expand(g.setRows(kCache, g.view2d(k, nEmbdKv, nTokens, kNb2, 0), c.kIdxs))
  if (!vTrans) {
    g.expand(g.setRows(vCache, g.view2d(v, nEmbdV, nTokens, vNb2, 0), c.vIdxs))
  } else {
    const v2 = vNb2 === 4 * nEmbdV ? g.reshape2d(v, nEmbdV, nTokens) : g.cont2d(v, nEmbdV, nTokens)
    const vView = g.reshape2d(vCache, 1, nEmbdV * kvCells)
    g.expand(g.setRows(vView, g.reshape2d(v2, 1, nEmbdV * nTokens), c.vIdxs))
  }

  // build_attn_mha over cells [cell0, cell0 + n) for tokens [row0, row0 + rows): (headDimV · nHead, rows) f32
  const mha = (row0: number, rows: number, cell0: number, n: number, mask: Tensor): Tensor => {
    const kv = g.view4d(kCache, [headDim, nHeadKv, n, 1], F16 * headDim, F16 * nEmbdKv, F16 * nEmbdKv * kvCells, F16 * nEmbdKv * cell0)
    const vv = vTrans
      ? g.view4d(vCache, [n, nHeadKv, headDimV, 1], F16 * kvCells * headDimV, F16 * kvCells, F16 * kvCells * nEmbdV, F16 * cell0)
      : g.view4d(vCache, [headDimV, nHeadKv, n, 1], F16 * headDimV, F16 * nEmbdV, F16 * nEmbdV * kvCells, F16 * nEmbdV * cell0)
    let qq = g.view4d(q, [headDim, nHead, rows, 1], 4 * headDim, 4 * headDim * nHead, 4 * headDim * nHead * rows, 4 * headDim * nHead * row0)
    qq = g.permute(qq, 0, 2, 1, 3)
    const kp = g.permute(kv, 0, 2, 1, 3)
    const vp = g.permute(vv, 0, 2, 1, 3)
    let out: Tensor
    if (c.flashAttention) {
      out = g.flashAttnExt(qq, kp, vp, mask, kqScale, softcap)
      if (sinks !== undefined) g.flashAttnAddSinks(out, sinks)
      out = g.reshape2d(out, headDimV * nHead, rows)
    } else {
      let kq = g.mulMatF32(kp, qq)
      if (softcap !== 0) kq = g.scale(g.tanh(g.scale(kq, 1 / softcap)), softcap)
      kq = g.softMaxExt(kq, mask, kqScale, 0)
      if (sinks !== undefined) g.softMaxAddSinks(kq, sinks)
      const kqv = g.mulMat(vp, kq)
      out = g.permute(kqv, 0, 2, 1, 3)
      out = g.cont2d(out, headDimV * nHead, rows)
    }
    return out
  }
  let cur: Tensor
  if (c.segments === undefined || c.segments.length < 2) {
    // n_stream = 1: every token over the first nKv cells
    cur = mha(0, nTokens, 0, nKv, c.mask)
  } else {
    // one stream per sequence (llama.cpp's non-unified cache), each over its own cells, joined in token order
    const parts = c.segments.map((s) => mha(s.row0, s.n, s.cell0, s.nKv, s.mask))
    while (parts.length > 1) {
      for (let i = 0; i + 1 < parts.length; i++) parts.splice(i, 2, g.concat(parts[i]!, parts[i + 1]!, 1))
    }
    cur = parts[0]!
  }
  g.expand(cur)
  cur = g.mulMat(wo, cur)
  if (woB !== undefined) cur = g.add(cur, woB)
  return cur
}

/** rms_norm(x) * w — llama.cpp's build_norm(LLM_NORM_RMS). */
export function rmsNorm (c: LayerContext, x: Tensor, w: Tensor): Tensor {
  return c.g.mul(c.g.rmsNorm(x, c.hp.rmsEps), w)
}

/** build_ffn(LLM_FFN_SILU, LLM_FFN_PAR): down(swiglu(gate(x), up(x))). */
export function swigluFfn (c: LayerContext, x: Tensor, up: Tensor, gate: Tensor, down: Tensor): Tensor {
  const tmp = c.g.mulMat(up, x)
  const gt = c.g.mulMat(gate, x)
  return c.g.mulMat(down, c.g.swigluSplit(gt, tmp))
}

/** output_norm then lm_head (+ optional bias). */
export function buildDecoderOutput (c: LayerContext, cur: Tensor): Tensor {
  const w = (n: string): Tensor => c.w(n)!
  let x = rmsNorm(c, cur, w('output_norm.weight'))
  x = c.g.mulMat(w('output.weight'), x)
  const b = c.w('output.bias')
  if (b !== undefined) x = c.g.add(x, b)
  return x
}

export { GGML_TYPE }
