/**
 * deepseek2 (DeepSeek V2 / V3 / R1, Kimi K2): port of llama.cpp src/models/deepseek2.cpp, MLA path (files with
 * the split attn_k_b / attn_v_b that current conversions write). Multi-head latent attention in the absorbed
 * form (MQA over one kv_lora_rank + rope wide head, K-only cache), RoPE mode 0 on the rope part only, YaRN;
 * leading dense blocks, then MoE blocks (build_moe_ffn: softmax or sigmoid gating, exp_probs_b, group-limited
 * routing, weights norm / scale) plus the shared experts.
 */
import { ROPE_MODE_NORMAL, tensorNb } from '../native/ggml.js'
import { buildAttention, buildDecoderOutput, rmsNorm, swigluFfn } from './attention.js'
import { deepseek2HParams } from './deepseek2-hparams.js'
import { buildMlaAttention } from './mla-attention.js'
import { buildMoeFfn } from './moe-ffn.js'
import { moeNodesPerLayer, moeTensors, moeWeights } from './moe-tensors.js'
import type { Tensor } from '../native/ggml.js'
import type { ArchSpec, LayerContext, TensorSpec } from './arch-spec.js'
import type { Deepseek2HParams } from './deepseek2-hparams.js'
import type { HParams } from '../hparams.js'

/** The tensors llama.cpp's load_arch_tensors creates for deepseek2 (MLA form). */
function tensors (h: HParams): TensorSpec[] {
  const hp = h as Deepseek2HParams
  const { nEmbd, nVocab, nFf, nHead, nRot } = hp
  const nope = hp.headDimKMla - nRot
  const out: TensorSpec[] = [
    { name: 'token_embd.weight', ne: [nEmbd, nVocab], role: 'embedding', op: 'get_rows' },
    { name: 'output_norm.weight', ne: [nEmbd], role: 'output', op: 'mul' },
    { name: 'output.weight', ne: [nEmbd, nVocab], role: 'output', op: 'mul_mat', optional: true }
  ]
  for (let i = 0; i < hp.nLayers; i++) {
    const L = (name: string, ne: number[], op: TensorSpec['op'], optional = false): TensorSpec => ({ name: `blk.${i}.${name}`, ne, layer: i, role: 'layer', op, optional })
    out.push(L('attn_norm.weight', [nEmbd], 'mul'))
    if (hp.nLoraQ > 0) {
      out.push(L('attn_q_a_norm.weight', [hp.nLoraQ], 'mul'), L('attn_q_a.weight', [nEmbd, hp.nLoraQ], 'mul_mat'),
        L('attn_q_b.weight', [hp.nLoraQ, nHead * hp.headDimKMla], 'mul_mat'))
    } else {
      out.push(L('attn_q.weight', [nEmbd, nHead * hp.headDimKMla], 'mul_mat'))
    }
    out.push(
      L('attn_kv_a_norm.weight', [hp.nLoraKv], 'mul'),
      L('attn_kv_a_mqa.weight', [nEmbd, hp.nLoraKv + nRot], 'mul_mat'),
      ...hp.isMla
        ? [L('attn_k_b.weight', [nope, hp.nLoraKv, nHead], 'mul_mat'), L('attn_v_b.weight', [hp.nLoraKv, hp.headDimVMla, nHead], 'mul_mat')]
        : [L('attn_kv_b.weight', [hp.nLoraKv, nHead * (nope + hp.headDimVMla)], 'mul_mat')],
      L('attn_output.weight', [nHead * hp.headDimVMla, nEmbd], 'mul_mat'),
      L('ffn_norm.weight', [nEmbd], 'mul')
    )
    if (i < hp.nLayerDenseLead) {
      out.push(L('ffn_gate.weight', [nEmbd, nFf], 'mul_mat'), L('ffn_down.weight', [nFf, nEmbd], 'mul_mat'), L('ffn_up.weight', [nEmbd, nFf], 'mul_mat'))
      continue
    }
    // routed experts (fused gate_up or separate; exp_probs_b optional), then the shared experts
    const nShexp = hp.nFfExp * hp.nExpertShared
    out.push(
      ...moeTensors(hp, i, { fusedGateUp: true }),
      L('exp_probs_b.bias', [hp.nExpert], 'add', true),
      L('ffn_gate_shexp.weight', [nEmbd, nShexp], 'mul_mat'),
      L('ffn_down_shexp.weight', [nShexp, nEmbd], 'mul_mat'),
      L('ffn_up_shexp.weight', [nEmbd, nShexp], 'mul_mat')
    )
  }
  return out
}

type Rope = Parameters<LayerContext['g']['ropeExt']>[3]

/**
 * MLA, absorbed form: Qcur = [wk_b · q_nope | rope(q_pe)] per head, Kcur = [latent | rope(k_pe)] one head, V = latent.
 * @param q (dk, nHead, nTokens) · kvCmpr (kvLora, nTokens) normed latent · kPe (nRot, 1, nTokens) roped
 */
function absorbedAttention (c: LayerContext, il: number, q: Tensor, kvCmpr: Tensor, kPe: Tensor, rope: Rope): Tensor {
  const { g, nTokens } = c
  const hp = c.hp as Deepseek2HParams
  const w = (s: string): Tensor => c.w(`blk.${il}.${s}`)!
  const { nHead, nRot, nLoraKv: kvLora, headDimKMla: dk } = hp
  const nope = dk - nRot
  const qNb = tensorNb(q)
  let qNope = g.view3d(q, nope, nHead, nTokens, qNb[1], qNb[2], 0)
  let qPe = g.view3d(q, nRot, nHead, nTokens, qNb[1], qNb[2], 4 * nope)
  qPe = g.ropeExt(qPe, c.pos, null, rope)
  // (nope, nTokens, nHead) × wk_b (nope, kvLora, nHead) → (kvLora, nTokens, nHead) → (kvLora, nHead, nTokens)
  qNope = g.permute(qNope, 0, 2, 1, 3)
  let qAbsorbed = g.mulMat(w('attn_k_b.weight'), qNope)
  qAbsorbed = g.permute(qAbsorbed, 0, 2, 1, 3)
  const qCur = g.concat(qAbsorbed, qPe, 0)
  const latent = g.reshape3d(kvCmpr, kvLora, 1, nTokens)
  const kCur = g.concat(latent, kPe, 0)
  return buildMlaAttention(c, il, qCur, kCur, latent, w('attn_output.weight'), w('attn_v_b.weight'), hp.kqScale)
}

/**
 * Legacy files (attn_kv_b, no *_mla keys): decompress K and V for every head, MHA with head sizes dk (K) / dv (V).
 * Q is roped in place on its trailing nRot dims (ggml_rope_set_offset), k_pe repeated over the heads.
 */
function legacyAttention (c: LayerContext, il: number, q: Tensor, kvCmpr: Tensor, kPe: Tensor, rope: Rope): Tensor {
  const { g, nTokens } = c
  const hp = c.hp as Deepseek2HParams
  const w = (s: string): Tensor => c.w(`blk.${il}.${s}`)!
  const { nHead, nRot, headDimKMla: dk, headDimVMla: dv } = hp
  const nope = dk - nRot
  // (nHead · (nope + dv), nTokens)
  const kv = g.mulMat(w('attn_kv_b.weight'), kvCmpr)
  const row = 4 * (nope + dv)
  const kNope = g.view3d(kv, nope, nHead, nTokens, row, row * nHead, 0)
  let vCur = g.view3d(kv, dv, nHead, nTokens, row, row * nHead, 4 * nope)
  vCur = g.cont(vCur)
  const qCur = g.ropeSetOffset(g.ropeExt(q, c.pos, null, rope), nope)
  const kCur = g.concat(kNope, g.repeat4d(kPe, nRot, nHead, nTokens, 1), 0)
  return buildAttention(c, il, qCur, kCur, vCur, w('attn_output.weight'), undefined, hp.kqScale)
}

/** deepseek2.cpp's layer: Q (one matrix or LoRA), the compressed KV latent and its rope part, attention, dense FFN or MoE + shared experts. */
function buildLayer (c: LayerContext, il: number, inpL: Tensor): Tensor {
  const { g, nTokens } = c
  const hp = c.hp as Deepseek2HParams
  const w = (s: string): Tensor => c.w(`blk.${il}.${s}`)!
  const { nHead, nRot, nLoraKv: kvLora, headDimKMla: dk } = hp
  let inpSA = inpL
  let cur = rmsNorm(c, inpL, w('attn_norm.weight'))

  let q: Tensor
  if (hp.nLoraQ > 0) {
    q = g.mulMat(w('attn_q_a.weight'), cur)
    q = rmsNorm(c, q, w('attn_q_a_norm.weight'))
    q = g.mulMat(w('attn_q_b.weight'), q)
  } else {
    q = g.mulMat(w('attn_q.weight'), cur)
  }
  // (dk, nHead, nTokens)
  q = g.reshape3d(q, dk, nHead, nTokens)

  const kvCmprPe = g.mulMat(w('attn_kv_a_mqa.weight'), cur)
  const rowBytes = 4 * (kvLora + nRot)
  // (kvLora, nTokens) and (nRot, 1, nTokens) views of (kvLora + nRot, nTokens)
  let kvCmpr = g.view2d(kvCmprPe, kvLora, nTokens, rowBytes, 0)
  let kPe = g.view3d(kvCmprPe, nRot, 1, nTokens, rowBytes, rowBytes, 4 * kvLora)
  const rope = {
    nDims: nRot, mode: ROPE_MODE_NORMAL, nCtxOrig: hp.nCtxOrig, freqBase: hp.ropeFreqBase, freqScale: hp.ropeFreqScale,
    extFactor: hp.ropeExtFactor, attnFactor: hp.ropeAttnFactor, betaFast: hp.ropeBetaFast, betaSlow: hp.ropeBetaSlow
  }
  kPe = g.ropeExt(kPe, c.pos, null, rope)
  kvCmpr = rmsNorm(c, kvCmpr, w('attn_kv_a_norm.weight'))

  cur = hp.isMla
    ? absorbedAttention(c, il, q, kvCmpr, kPe, rope)
    : legacyAttention(c, il, q, kvCmpr, kPe, rope)

  if (il === hp.nLayers - 1 && c.outIds !== undefined) {
    cur = g.getRows(cur, c.outIds)
    inpSA = g.getRows(inpSA, c.outIds)
  }
  const ffnInp = g.add(cur, inpSA)
  cur = rmsNorm(c, ffnInp, w('ffn_norm.weight'))
  if (il < hp.nLayerDenseLead) {
    cur = swigluFfn(c, cur, w('ffn_up.weight'), w('ffn_gate.weight'), w('ffn_down.weight'))
  } else {
    const moeOut = buildMoeFfn(c, cur, moeWeights(c, il), {
      nExpert: hp.nExpert, nExpertUsed: hp.nExpertUsed, activation: 'silu', normW: hp.expertWeightsNorm, wScale: hp.expertWeightsScale,
      gating: hp.gating, nExpertGroups: hp.nExpertGroups, nGroupUsed: hp.nGroupUsed
    })
    const shexp = swigluFfn(c, cur, w('ffn_up_shexp.weight'), w('ffn_gate_shexp.weight'), w('ffn_down_shexp.weight'))
    cur = g.add(moeOut, shexp)
  }
  return g.add(cur, ffnInp)
}

/**
 * f32 values per token one layer's graph holds at once, an upper bound: the residual stream, then the widest phase —
 * MLA attention (q, rope parts, absorbed q, Qcur, latent K/V, attention output and its decompression), the dense
 * FFN or the MoE block (router, nUsed experts' gate/up/act/down and weighted outputs, shared experts).
 */
function activationFloatsPerToken (h: HParams): number {
  const hp = h as Deepseek2HParams
  const { nEmbd, nHead, nRot, nLoraKv: kv } = hp
  const dk = hp.headDimKMla
  const dv = hp.headDimVMla
  // legacy MHA: kv_b output, V copy, roped Q, repeated k_pe, Kcur, attention output
  const attn = (hp.isMla ? nHead * (dk + 2 * nRot + 3 * kv + 2 * dv) : nHead * (4 * dk + 4 * dv)) + hp.nLoraQ + 4 * (kv + nRot) + nEmbd
  const dense = hp.nLayerDenseLead > 0 ? 3 * hp.nFf + nEmbd : 0
  const moe = hp.nLayerDenseLead < hp.nLayers
    ? 8 * hp.nExpert + hp.nExpertUsed * (3 * hp.nFfExp + 3 * nEmbd) + 3 * hp.nFfExp * hp.nExpertShared + 2 * nEmbd
    : 0
  return 4 * nEmbd + Math.max(attn, dense, moe)
}

export const deepseek2: ArchSpec = {
  name: 'deepseek2',
  hparams: deepseek2HParams,
  tensors,
  // MLA: one K row of kv_lora_rank + rope per cell, V is a view of it; legacy MHA: K and V per head
  kvWidths: (hp) => ({ k: hp.headDim * hp.nHeadKv, v: (hp as Deepseek2HParams).isMla ? 0 : hp.valueDim * hp.nHeadKv }),
  buildLayer,
  buildOutput: buildDecoderOutput,
  // MLA attention (~50 tensors) + routing and experts + the shared expert
  nodesPerLayer: (hp) => moeNodesPerLayer(hp as Deepseek2HParams) + 48,
  activationFloatsPerToken
}
