/**
 * deepseek2 hyper-parameters: llama.cpp's llama_model_deepseek2::load_arch_hparams, the generic RoPE/YaRN
 * keys of llama_model::load_hparams, the YaRN attention factor of llama_context's constructor and the
 * kq_scale of the deepseek2 graph — all in f32 arithmetic as llama.cpp computes them.
 */
import { InvalidExpertConfigError, InvalidGgufError, UnsupportedModelError } from '../../shared/errors/engine-errors.js'
import { moeHParams, readGatingFunc } from './moe-hparams.js'
import type { MoeHParams } from './moe-hparams.js'
import type { HParams } from '../hparams.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'

export interface Deepseek2HParams extends MoeHParams {
  /** absorbed MLA (attn_k_b / attn_v_b, K-only cache) — false: a legacy conversion with attn_kv_b, run as MHA */
  isMla: boolean
  /** q LoRA rank (0: one attn_q matrix, DeepSeek V2-Lite) */
  nLoraQ: number
  /** kv_lora_rank: width of the compressed KV latent (the MLA "value" width) */
  nLoraKv: number
  /** per-head Q/K size after decompression (qk_nope + qk_rope) and per-head V size */
  headDimKMla: number
  headDimVMla: number
  /** RoPE arguments as llama.cpp passes them to ggml_rope_ext (after the YaRN attn-factor adjustment) */
  ropeExtFactor: number
  ropeAttnFactor: number
  ropeBetaFast: number
  ropeBetaSlow: number
  /** softmax scale of the attention */
  kqScale: number
}

const f = Math.fround
/** logf, as an f32 result */
const logf = (x: number): number => f(Math.log(x))

/** llama_context: get_mscale(scale, mscale) */
function getMscale (scale: number, mscale: number): number {
  return scale <= 1 ? 1 : f(f(f(f(0.1) * mscale) * logf(scale)) + 1)
}

export function deepseek2HParams (m: MetadataReader, all: HParams): Deepseek2HParams {
  const path = m.gguf.path
  const unsupported = (why: string): never => { throw new UnsupportedModelError(`${path}: ${why}`) }
  if (!(all.rmsEps > 0)) throw new InvalidGgufError(`${path}: missing metadata key ${m.key('attention.layer_norm_rms_epsilon')}`)
  // multi-token-prediction blocks (GLM-4.7-Flash and others) follow the trunk's blocks; the trunk alone gives the logits
  const nextn = m.nonNegInt('nextn_predict_layers', 0)
  if (nextn >= all.nLayers) throw new InvalidGgufError(`${path}: ${m.key('nextn_predict_layers')} ${nextn} leaves no trunk of ${all.nLayers} blocks`)
  const base: HParams = { ...all, nLayers: all.nLayers - nextn, swaWindow: all.swaWindow?.slice(0, all.nLayers - nextn) }
  if (m.float('attention.temperature_scale', 0) !== 0) unsupported('attention temperature scaling is not supported')
  const vocab = m.raw('tokenizer.ggml.tokens')
  const nVocab = m.nonNegInt('vocab_size', typeof vocab === 'object' ? vocab.length : 0)
  const L = base.nLayers
  // DeepSeek-V2-Lite, GigaChat3-10B-A1.8B, Kanana-2-30B-A3B carry no q_lora_rank
  const isLite = L === 27 || L === 26 || (L === 48 && nVocab === 128256)
  const nLoraQ = isLite ? 0 : m.nonNegInt('attention.q_lora_rank')
  const nLoraKv = m.posInt('attention.kv_lora_rank')
  // MLA (absorbed: attn_k_b / attn_v_b) when both *_mla keys are set; else a legacy conversion with attn_kv_b, run as MHA
  const kMla = m.nonNegInt('attention.key_length_mla', 0)
  const vMla = m.nonNegInt('attention.value_length_mla', 0)
  if ((kMla === 0) !== (vMla === 0)) throw new InvalidGgufError(`${path}: ${m.key('attention.key_length_mla')} and value_length_mla must both be set or both be absent`)
  const isMla = kMla !== 0
  const headDimKMla = isMla ? kMla : base.headDim
  const headDimVMla = isMla ? vMla : base.valueDim
  const nRot = base.nRot
  if (nRot < 1 || nRot % 2 !== 0 || headDimKMla - nRot < 1) throw new InvalidGgufError(`${path}: rope.dimension_count ${nRot} does not fit key_length_mla ${headDimKMla}`)
  if (isMla) {
    // MLA is stored as MQA over one (kv_lora_rank + rope) wide head; V is its first kv_lora_rank columns
    if (base.nHeadKv !== 1) throw new InvalidGgufError(`${path}: MLA needs ${m.key('attention.head_count_kv')} = 1, got ${base.nHeadKv}`)
    if (base.headDim !== nLoraKv + nRot) throw new InvalidGgufError(`${path}: ${m.key('attention.key_length')} ${base.headDim} != kv_lora_rank ${nLoraKv} + rope ${nRot}`)
    if (base.valueDim !== nLoraKv) throw new InvalidGgufError(`${path}: ${m.key('attention.value_length')} ${base.valueDim} != kv_lora_rank ${nLoraKv}`)
  } else {
    // MHA: every head gets its own decompressed K (nope + shared rope part) and V; RoPE at offset nope (even)
    if (base.nHeadKv !== base.nHead) throw new InvalidGgufError(`${path}: a deepseek2 file without key_length_mla needs head_count_kv = head_count (${base.nHead}), got ${base.nHeadKv}`)
    if ((headDimKMla - nRot) % 2 !== 0) throw new InvalidGgufError(`${path}: key_length ${headDimKMla} - rope ${nRot} is odd`)
  }

  const nLayerDenseLead = m.nonNegInt('leading_dense_block_count', 0)
  if (nLayerDenseLead > 0 && base.nFf < 1) throw new InvalidGgufError(`${path}: ${m.key('feed_forward_length')} is missing or 0`)
  // older V2 / V2.5 files have no gating key (GLM 4.7 Lite: sigmoid)
  const gating = readGatingFunc(m, (L === 47 || L === 48) && nVocab === 154880 ? 'sigmoid' : 'softmax')
  const arch = {
    nFfExp: m.nonNegInt('expert_feed_forward_length'),
    nExpertShared: m.nonNegInt('expert_shared_count'),
    expertWeightsScale: f(m.float('expert_weights_scale', 0)),
    expertWeightsNorm: m.bool('expert_weights_norm', false),
    gating,
    nLayerDenseLead
  }
  let moe: MoeHParams
  if (nLayerDenseLead < L) {
    moe = moeHParams(m, base, arch)
    if (moe.nExpertShared < 1) throw new InvalidExpertConfigError(`${path}: ${m.key('expert_shared_count')} is 0 (deepseek2 MoE blocks have shared experts)`)
    for (let i = nLayerDenseLead; i < L; i++) {
      const has = (n: string): boolean => m.gguf.tensors.has(`blk.${i}.${n}`)
      if (!has('ffn_gate_up_exps.weight') && !(has('ffn_gate_exps.weight') && has('ffn_up_exps.weight'))) {
        throw new InvalidGgufError(`${path}: missing tensor blk.${i}.ffn_gate_exps.weight / ffn_up_exps.weight (or the fused ffn_gate_up_exps.weight)`)
      }
    }
  } else {
    // every block dense (leading_dense_block_count >= block_count): no expert checks, as llama.cpp
    moe = { ...base, ...arch, nFfShexp: 0, nExpertGroups: m.nonNegInt('expert_group_count', 0), nGroupUsed: m.nonNegInt('expert_group_used_count', 0), nLayerDenseLead: L }
  }

  // RoPE: llama_model::load_hparams (scaling type defaults to linear) and llama_context (YaRN)
  const scaling = m.str('rope.scaling.type') ?? 'linear'
  if (scaling !== 'none' && scaling !== 'linear' && scaling !== 'yarn') unsupported(`rope scaling '${scaling}' is not supported`)
  const ropescale = m.has('rope.scaling.factor') ? f(m.float('rope.scaling.factor')) : f(m.float('rope.scale_linear', 0))
  let freqScale = ropescale === 0 ? 1 : f(1 / ropescale)
  if (scaling === 'none') freqScale = 1
  let yarnLogMul = 0
  // [TAG_DEEPSEEK2_YARN_LOG_MUL_FIX]: cancel the 0.1 factor of the convert script
  if (m.has('rope.scaling.yarn_log_multiplier')) yarnLogMul = f(f(m.float('rope.scaling.yarn_log_multiplier')) / f(0.1))
  const extFactor = scaling === 'yarn' ? 1 : 0
  let attnFactor = 1
  if (extFactor !== 0) {
    const factor = f(1 / freqScale)
    if (yarnLogMul !== 0) {
      const mscaleAllDims = yarnLogMul
      const mscale = mscaleAllDims !== 1 ? mscaleAllDims : 1
      attnFactor = f(getMscale(factor, mscale) / getMscale(factor, mscaleAllDims))
    } else {
      attnFactor = getMscale(factor, 1)
    }
    attnFactor = f(attnFactor * f(1 / f(1 + f(f(0.1) * logf(factor)))))
  }
  attnFactor = f(attnFactor * f(m.float('rope.scaling.attn_factor', 1)))

  // deepseek2 graph: pre-scale kq_scale with the original attn factor (ggml's rope cancels its own YaRN factor)
  const inv = f(1 / freqScale)
  const attnFactorOrg = f(attnFactor * f(1 + f(f(0.1) * logf(inv))))
  const mscale = f(attnFactorOrg * f(1 + f(f(f(0.1) * yarnLogMul) * logf(inv))))
  const kqScale = f(f(mscale * mscale) / f(Math.sqrt(headDimKMla)))

  return {
    ...moe,
    ropeFreqScale: freqScale,
    ropeScalingType: scaling,
    isMla, nLoraQ, nLoraKv, headDimKMla, headDimVMla,
    ropeExtFactor: extFactor, ropeAttnFactor: attnFactor, ropeBetaFast: 32, ropeBetaSlow: 1,
    kqScale
  }
}
