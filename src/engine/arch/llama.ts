/** llama: port of llama.cpp src/models/llama.cpp (dense, or MoE / Mixtral via llama-moe.ts; no kq-norm). RoPE mode 0 (interleaved pairs). */
import { ROPE_MODE_NORMAL } from '../native/ggml.js'
import { buildAttention, buildDecoderOutput, rmsNorm, swigluFfn } from './attention.js'
import { decoderTensors } from './decoder-tensors.js'
import { denseDecoderHParams } from './dense-hparams.js'
import { llamaMoeFfn, llamaMoeHParams, llamaMoeTensors } from './llama-moe.js'
import { moeActivationFloats, moeNodesPerLayer } from './moe-tensors.js'
import type { Tensor } from '../native/ggml.js'
import type { ArchSpec, LayerContext } from './arch-spec.js'
import type { MoeHParams } from './moe-hparams.js'

/** The FFN of layer il: (nEmbd, nTokens) f32 after ffn_norm → (nEmbd, nTokens) f32, before the residual add. */
export type LayerFfn = (c: LayerContext, il: number, x: Tensor) => Tensor

/** build_ffn(LLM_FFN_SILU, LLM_FFN_PAR) with ffn_up / ffn_gate / ffn_down. */
export const denseFfn: LayerFfn = (c, il, x) => {
  const w = (s: string): Tensor => c.w(`blk.${il}.${s}`)!
  return swigluFfn(c, x, w('ffn_up.weight'), w('ffn_gate.weight'), w('ffn_down.weight'))
}

export function buildLlamaLayer (c: LayerContext, il: number, inpL: Tensor, ropeMode: number, kqScale: number, ffn: LayerFfn = denseFfn): Tensor {
  const { g, hp, nTokens } = c
  const w = (s: string): Tensor => c.w(`blk.${il}.${s}`)!
  const opt = (s: string): Tensor | undefined => c.w(`blk.${il}.${s}`)
  let inpSA = inpL
  let cur = rmsNorm(c, inpL, w('attn_norm.weight'))

  // build_qkv (separate Q/K/V path)
  let q = g.mulMat(w('attn_q.weight'), cur)
  const bq = opt('attn_q.bias'); if (bq !== undefined) q = g.add(q, bq)
  let k = g.mulMat(w('attn_k.weight'), cur)
  const bk = opt('attn_k.bias'); if (bk !== undefined) k = g.add(k, bk)
  let v = g.mulMat(w('attn_v.weight'), cur)
  const bv = opt('attn_v.bias'); if (bv !== undefined) v = g.add(v, bv)
  q = g.reshape3d(q, hp.headDim, hp.nHead, nTokens)
  k = g.reshape3d(k, hp.headDim, hp.nHeadKv, nTokens)
  v = g.reshape3d(v, hp.headDim, hp.nHeadKv, nTokens)
  // qwen3: per-head RMS norm of Q and K before RoPE
  const qNorm = opt('attn_q_norm.weight')
  if (qNorm !== undefined) q = rmsNorm(c, q, qNorm)
  const kNorm = opt('attn_k_norm.weight')
  if (kNorm !== undefined) k = rmsNorm(c, k, kNorm)

  const rope = {
    nDims: hp.nRot, mode: ropeMode, nCtxOrig: hp.nCtxOrig, freqBase: hp.ropeFreqBase, freqScale: hp.ropeFreqScale,
    extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1
  }
  const factors = c.w('rope_freqs.weight') ?? null
  q = g.ropeExt(q, c.pos, factors, rope)
  k = g.ropeExt(k, c.pos, factors, rope)

  cur = buildAttention(c, il, q, k, v, w('attn_output.weight'), opt('attn_output.bias'), kqScale)
  if (il === hp.nLayers - 1 && c.outIds !== undefined) {
    cur = g.getRows(cur, c.outIds)
    inpSA = g.getRows(inpSA, c.outIds)
  }
  const ffnInp = g.add(cur, inpSA)
  cur = rmsNorm(c, ffnInp, w('ffn_norm.weight'))
  cur = ffn(c, il, cur)
  return g.add(cur, ffnInp)
}

/** llama.cpp's llama: a layer with ffn_gate_inp runs the MoE branch (Mixtral), any other the dense FFN */
const llamaFfn: LayerFfn = (c, il, x) => c.w(`blk.${il}.ffn_gate_inp.weight`) !== undefined ? llamaMoeFfn(c, il, x) : denseFfn(c, il, x)

export const llama: ArchSpec = {
  name: 'llama',
  hparams: (m, hp) => hp.nExpert > 0 ? llamaMoeHParams(m, hp) : denseDecoderHParams(m, hp),
  tensors: (hp) => {
    const dense = [
      ...decoderTensors(hp, { outputBias: false }),
      { name: 'rope_freqs.weight', ne: [hp.nRot / 2], role: 'layer' as const, op: 'mul' as const, optional: true }
    ]
    return hp.nExpert > 0 ? llamaMoeTensors(hp, dense) : dense
  },
  buildLayer: (c, il, inpL) => buildLlamaLayer(c, il, inpL, ROPE_MODE_NORMAL,
    c.hp.attentionScale === 0 ? 1 / Math.sqrt(c.hp.headDim) : c.hp.attentionScale, llamaFfn),
  buildOutput: buildDecoderOutput,
  nodesPerLayer: (hp) => hp.nExpert > 0 ? moeNodesPerLayer(hp as MoeHParams) : 64,
  // Mixtral's experts outgrow the generic 3·nFf + 4·nEmbd; dense llama reports nothing (the generic bound)
  activationFloatsPerToken: (hp) => hp.nExpert > 0 ? moeActivationFloats(hp as MoeHParams) : undefined
}
