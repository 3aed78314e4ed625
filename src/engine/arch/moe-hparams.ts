import { InvalidExpertConfigError, InvalidGgufError, UnsupportedModelError } from '../../shared/errors/engine-errors.js'
import type { HParams } from '../hparams.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'

/** llama.cpp's llama_expert_gating_func_type (1 softmax, 2 sigmoid, 3 softmax_weight); sqrt_softplus (4) is not ported. */
export type GatingFunc = 'softmax' | 'sigmoid' | 'softmax_weight'
const GATING: Record<number, GatingFunc> = { 1: 'softmax', 2: 'sigmoid', 3: 'softmax_weight' }

/** llama.cpp's LLAMA_MAX_EXPERTS in the pinned version */
export const MAX_EXPERTS = 1024

/** The hyper-parameters of a mixture-of-experts decoder (llama_hparams' expert fields). */
export interface MoeHParams extends HParams {
  /** width of one routed expert's FFN (expert_feed_forward_length, or the arch's fallback) */
  nFfExp: number
  /** expert_shared_count (0 = none) */
  nExpertShared: number
  /** expert_shared_feed_forward_length (0 = none / arch-derived) */
  nFfShexp: number
  /** expert_weights_scale: routing weights × this unless 0 or 1 */
  expertWeightsScale: number
  /** expert_weights_norm: routing weights divided by their sum */
  expertWeightsNorm: boolean
  gating: GatingFunc
  /** expert_group_count (0 or 1 = no group-limited routing) and expert_group_used_count */
  nExpertGroups: number
  nGroupUsed: number
  /** leading_dense_block_count: layers [0, n) have a dense FFN */
  nLayerDenseLead: number
}

/** What the architecture's own load_arch_hparams read (llama.cpp reads different keys per architecture). */
export type MoeArchValues = Pick<MoeHParams, 'nFfExp' | 'expertWeightsScale' | 'expertWeightsNorm' | 'gating'> &
  Partial<Pick<MoeHParams, 'nExpertShared' | 'nFfShexp' | 'nLayerDenseLead'>>

/**
 * The generic expert checks of llama_model::load_hparams (expert_count, expert_used_count, expert groups)
 * plus the values the architecture read itself. Throws InvalidExpertConfigError where llama.cpp would assert.
 */
export function moeHParams (m: MetadataReader, hp: HParams, arch: MoeArchValues): MoeHParams {
  const path = m.gguf.path
  const bad = (why: string): never => { throw new InvalidExpertConfigError(`${path}: ${why}`) }
  const { nExpert, nExpertUsed } = hp
  if (nExpert < 1) bad(`${m.key('expert_count')} is missing or 0 (${m.arch} is a mixture-of-experts architecture)`)
  if (nExpert > MAX_EXPERTS) bad(`${m.key('expert_count')} = ${nExpert} exceeds ${MAX_EXPERTS}`)
  if (nExpertUsed < 1) bad(`${m.key('expert_used_count')} is missing or 0`)
  if (nExpertUsed > nExpert) bad(`${m.key('expert_used_count')} = ${nExpertUsed} exceeds ${m.key('expert_count')} = ${nExpert}`)
  const nExpertGroups = m.nonNegInt('expert_group_count', 0)
  const nGroupUsed = m.nonNegInt('expert_group_used_count', 0)
  if (nExpertGroups >= nExpert) bad(`${m.key('expert_group_count')} = ${nExpertGroups} is not below expert_count ${nExpert}`)
  if (nExpertGroups > 1) {
    if (nExpert % nExpertGroups !== 0) bad(`expert_count ${nExpert} is not a multiple of ${m.key('expert_group_count')} ${nExpertGroups}`)
    if (nGroupUsed < 1 || nGroupUsed >= nExpertGroups) bad(`${m.key('expert_group_used_count')} = ${nGroupUsed} is not in [1, ${nExpertGroups})`)
    // (groups < experts and experts % groups == 0 leave ≥ 2 experts per group: the group score sums each group's top 2)
  }
  if (!(arch.nFfExp >= 1) || !Number.isInteger(arch.nFfExp)) bad(`expert feed-forward length ${arch.nFfExp} is not a positive integer`)
  const out: MoeHParams = {
    ...hp,
    nFfExp: arch.nFfExp,
    nExpertShared: arch.nExpertShared ?? 0,
    nFfShexp: arch.nFfShexp ?? 0,
    expertWeightsScale: arch.expertWeightsScale,
    expertWeightsNorm: arch.expertWeightsNorm,
    gating: arch.gating,
    nExpertGroups,
    nGroupUsed,
    nLayerDenseLead: arch.nLayerDenseLead ?? 0
  }
  if (out.nLayerDenseLead > hp.nLayers) bad(`${m.key('leading_dense_block_count')} = ${out.nLayerDenseLead} exceeds block_count ${hp.nLayers}`)
  return out
}

/** `<arch>.expert_gating_func` (0 / absent → `fallback`, as the architectures that read it do). */
export function readGatingFunc (m: MetadataReader, fallback: GatingFunc): GatingFunc {
  const v = m.nonNegInt('expert_gating_func', 0)
  if (v === 0) return fallback
  const g = GATING[v]
  if (g === undefined) throw new UnsupportedModelError(`${m.gguf.path}: ${m.key('expert_gating_func')} = ${v} is not supported (softmax 1, sigmoid 2, softmax_weight 3)`)
  return g
}

/**
 * The llama-family attention checks for MoE decoders (rms eps, value_length == key_length, rope scaling none /
 * linear) and, unless `partialRotary`, full rotary (the graphs of llama / qwen3moe assert n_rot == head size).
 */
export function moeAttentionChecks (m: MetadataReader, hp: HParams, o: { partialRotary?: boolean } = {}): void {
  const path = m.gguf.path
  if (!(hp.rmsEps > 0)) throw new InvalidGgufError(`${path}: missing metadata key ${m.key('attention.layer_norm_rms_epsilon')}`)
  if (hp.valueDim !== hp.headDim) throw new UnsupportedModelError(`${path}: ${m.key('attention.value_length')} != key_length (${hp.headDim})`)
  if (hp.nRot > hp.headDim || hp.nRot % 2 !== 0 || hp.nRot < 2) throw new InvalidGgufError(`${path}: ${m.key('rope.dimension_count')} = ${hp.nRot} is not an even number in [2, ${hp.headDim}]`)
  if (o.partialRotary !== true && hp.nRot !== hp.headDim) throw new UnsupportedModelError(`${path}: partial rotary embeddings (rope.dimension_count ${hp.nRot} != ${hp.headDim})`)
  if (hp.ropeScalingType !== 'none' && hp.ropeScalingType !== 'linear') throw new UnsupportedModelError(`${path}: rope scaling '${hp.ropeScalingType}' is not supported`)
}
