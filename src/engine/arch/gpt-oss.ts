/**
 * gpt-oss (gpt-oss-20b / 120b): port of llama.cpp src/models/openai-moe.cpp. Per layer: RMS norm → Q/K/V with
 * biases → NEOX RoPE (YaRN as llama_context computes it; sliding-window layers use rope.freq_base_swa) →
 * attention with per-head sinks (kq_scale 1/sqrt(n_rot)), every other layer a sliding window (pattern 2, layer 0
 * slides) → output projection + bias → residual → post_attention_norm → experts (softmax over the selected
 * router logits, swiglu_oai, per-expert biases via add_id, router bias) → residual. All tokens run the last layer;
 * the output rows are picked before output_norm (llama.cpp's embeddings_nextn_masked = false path).
 */
import { InvalidGgufError, UnsupportedModelError } from '../../shared/errors/engine-errors.js'
import { GGML_TYPE, ROPE_MODE_NEOX } from '../native/ggml.js'
import { layerWindow } from '../swa-cells.js'
import { buildAttention, buildDecoderOutput, rmsNorm } from './attention.js'
import { buildMoeFfn } from './moe-ffn.js'
import { moeHParams } from './moe-hparams.js'
import { moeActivationFloats, moeNodesPerLayer, moeTensors, moeWeights } from './moe-tensors.js'
import { buildQkv, hasFusedQkv, qkvTensors } from './qkv.js'
import { readRopeScaling } from './rope-scaling.js'
import { swaWindows } from './swa-pattern.js'
import type { Tensor } from '../native/ggml.js'
import type { ArchSpec, LayerContext, TensorSpec } from './arch-spec.js'
import type { MoeHParams } from './moe-hparams.js'
import type { RopeScaling } from './rope-scaling.js'

export interface GptOssHParams extends MoeHParams {
  rope: RopeScaling
  ropeFreqBaseSwa: number
  ropeFreqScaleSwa: number
  fusedQkv: boolean
}

function gptOssTensors (hp: GptOssHParams): TensorSpec[] {
  const { nEmbd, nVocab } = hp
  const out: TensorSpec[] = [
    { name: 'token_embd.weight', ne: [nEmbd, nVocab], role: 'embedding', op: 'get_rows' },
    { name: 'output_norm.weight', ne: [nEmbd], role: 'output', op: 'mul' },
    { name: 'output.weight', ne: [nEmbd, nVocab], role: 'output', op: 'mul_mat' }
  ]
  for (let i = 0; i < hp.nLayers; i++) {
    const L = (name: string, ne: number[], op: TensorSpec['op']): TensorSpec => ({ name: `blk.${i}.${name}`, ne, layer: i, role: 'layer', op })
    out.push(
      L('attn_norm.weight', [nEmbd], 'mul'),
      L('post_attention_norm.weight', [nEmbd], 'mul'),
      ...qkvTensors(hp, i, hp.fusedQkv),
      L('attn_output.weight', [hp.nHead * hp.nRot, nEmbd], 'mul_mat'),
      L('attn_sinks.weight', [hp.nHead], 'scale'),
      L('attn_output.bias', [nEmbd], 'add'),
      ...moeTensors(hp, i, { biases: true, scales: false }))
  }
  return out
}

function gptOssHParams (m: Parameters<NonNullable<ArchSpec['hparams']>>[0], hp: Parameters<NonNullable<ArchSpec['hparams']>>[1]): GptOssHParams {
  const path = m.gguf.path
  if (!(hp.rmsEps > 0)) throw new InvalidGgufError(`${path}: missing metadata key ${m.key('attention.layer_norm_rms_epsilon')}`)
  // Q is n_head × n_rot wide: the head size is n_rot
  if (hp.nRot !== hp.headDim || hp.valueDim !== hp.headDim) throw new UnsupportedModelError(`${path}: gpt-oss with rope.dimension_count ${hp.nRot}, key_length ${hp.headDim}, value_length ${hp.valueDim} (all must be equal)`)
  for (let i = 0; i < hp.nLayers; i++) {
    const s = m.gguf.tensors.get(`blk.${i}.attn_sinks.weight`)
    if (s !== undefined && s.type !== GGML_TYPE.F32) throw new UnsupportedModelError(`${path}: blk.${i}.attn_sinks.weight must be f32 (ggml's softmax sinks), got type ${s.type}`)
  }
  const nSwa = m.posInt('attention.sliding_window')
  // llama_context's YaRN; openai-moe reads no YaRN keys of its own (beta fast / slow stay 32 / 1)
  if (m.has('rope.scaling.yarn_log_multiplier')) throw new UnsupportedModelError(`${path}: ${m.key('rope.scaling.yarn_log_multiplier')} is not read by llama.cpp's gpt-oss`)
  const rope = { ...readRopeScaling(m, ['none', 'linear', 'yarn']), betaFast: 32, betaSlow: 1 }
  // hparams.rope_freq_scale_train (1 / factor whatever the scaling type): what sliding-window layers use
  const factor = m.has('rope.scaling.factor') ? Math.fround(m.float('rope.scaling.factor')) : Math.fround(m.float('rope.scale_linear', 0))
  const moe = moeHParams(m, hp, { nFfExp: m.posInt('expert_feed_forward_length'), expertWeightsScale: 0, expertWeightsNorm: false, gating: 'softmax_weight' })
  return {
    ...moe,
    swaWindow: swaWindows(m, hp.nLayers, nSwa, 2),
    swaType: 'standard',
    ropeScalingType: rope.type,
    ropeFreqScale: rope.freqScale,
    rope,
    // rope_freq_base_train_swa defaults to the full-attention base; the swa scale is always the trained one
    ropeFreqBaseSwa: m.float('rope.freq_base_swa', hp.ropeFreqBase),
    ropeFreqScaleSwa: factor === 0 ? 1 : Math.fround(1 / factor),
    fusedQkv: hasFusedQkv(m.gguf)
  }
}

function buildGptOssLayer (c: LayerContext, il: number, inpL: Tensor): Tensor {
  const { g } = c
  const hp = c.hp as GptOssHParams
  const w = (s: string): Tensor => c.w(`blk.${il}.${s}`)!
  const swa = layerWindow(hp, il) > 0
  let cur = rmsNorm(c, inpL, w('attn_norm.weight'))
  let { q, k, v } = buildQkv(c, il, cur)
  const r = hp.rope
  const rope = {
    nDims: hp.nRot, mode: ROPE_MODE_NEOX, nCtxOrig: hp.nCtxOrig,
    freqBase: swa ? hp.ropeFreqBaseSwa : hp.ropeFreqBase, freqScale: swa ? hp.ropeFreqScaleSwa : r.freqScale,
    extFactor: r.extFactor, attnFactor: r.attnFactor, betaFast: r.betaFast, betaSlow: r.betaSlow
  }
  q = g.ropeExt(q, c.pos, null, rope)
  k = g.ropeExt(k, c.pos, null, rope)
  cur = buildAttention(c, il, q, k, v, w('attn_output.weight'), w('attn_output.bias'), 1 / Math.sqrt(hp.nRot), 0, w('attn_sinks.weight'))
  const ffnInp = g.add(cur, inpL)
  cur = rmsNorm(c, ffnInp, w('post_attention_norm.weight'))
  cur = buildMoeFfn(c, cur, moeWeights(c, il), {
    nExpert: hp.nExpert, nExpertUsed: hp.nExpertUsed, activation: 'swiglu_oai', normW: false, wScale: hp.expertWeightsScale,
    gating: 'softmax_weight', nExpertGroups: hp.nExpertGroups, nGroupUsed: hp.nGroupUsed
  })
  return g.add(cur, ffnInp)
}

export const gptOss: ArchSpec = {
  name: 'gpt-oss',
  hparams: gptOssHParams,
  tensors: (hp) => gptOssTensors(hp as GptOssHParams),
  buildLayer: buildGptOssLayer,
  // the last layer ran on every token: keep the wanted rows, then output_norm and lm_head
  buildOutput: (c, cur) => buildDecoderOutput(c, c.outIds !== undefined ? c.g.getRows(cur, c.outIds) : cur),
  nodesPerLayer: (hp) => moeNodesPerLayer(hp as MoeHParams) + 8,
  activationFloatsPerToken: (hp) => moeActivationFloats(hp as MoeHParams)
}
