/**
 * glm4moe (GLM-4.5 / 4.6, GLM-4.5-Air): port of llama.cpp src/models/glm4-moe.cpp. The llama block with NEOX RoPE
 * over the first rope.dimension_count dims (partial rotary), Q/K/V biases, optional per-head Q/K norms, no
 * attention-output bias, `post_attention_norm` before the FFN; layers [0, leading_dense_block_count) dense, the
 * rest routed experts (sigmoid gating by default, exp_probs_b selection bias, expert_weights_norm / _scale) plus
 * shared experts (n_ff_exp × expert_shared_count wide) added to the routed output. The nextn (MTP) blocks at the
 * end of block_count are not part of the trunk: n_layer = block_count - nextn_predict_layers.
 */
import { UnsupportedModelError } from '../../shared/errors/engine-errors.js'
import { ROPE_MODE_NEOX } from '../native/ggml.js'
import { buildDecoderOutput, swigluFfn } from './attention.js'
import { decoderTensors } from './decoder-tensors.js'
import { buildLlamaLayer, denseFfn } from './llama.js'
import { buildMoeFfn } from './moe-ffn.js'
import { moeAttentionChecks, moeHParams, readGatingFunc } from './moe-hparams.js'
import { moeActivationFloats, moeNodesPerLayer, moeTensors, moeWeights } from './moe-tensors.js'
import type { Tensor } from '../native/ggml.js'
import type { ArchSpec, LayerContext, TensorSpec } from './arch-spec.js'
import type { LayerFfn } from './llama.js'
import type { MoeHParams } from './moe-hparams.js'

const glmFfn: LayerFfn = (c, il, x) => {
  const hp = c.hp as MoeHParams
  if (il < hp.nLayerDenseLead) return denseFfn(c, il, x)
  // build_moe_ffn without the per-expert scale tensors (glm4-moe.cpp passes none)
  const routed = buildMoeFfn(c, x, { ...moeWeights(c, il), upS: undefined, gateS: undefined, downS: undefined }, {
    nExpert: hp.nExpert, nExpertUsed: hp.nExpertUsed, activation: 'silu', normW: hp.expertWeightsNorm, wScale: hp.expertWeightsScale,
    gating: hp.gating, nExpertGroups: hp.nExpertGroups, nGroupUsed: hp.nGroupUsed
  })
  // the shared expert on the same input; llama.cpp builds it even when expert_shared_count is 0 (null weights
  // would crash there), so 0 shared experts is refused in hparams
  const w = (s: string): Tensor => c.w(`blk.${il}.${s}`)!
  const shared = swigluFfn(c, x, w('ffn_up_shexp.weight'), w('ffn_gate_shexp.weight'), w('ffn_down_shexp.weight'))
  return c.g.add(routed, shared)
}

/** glm4moe reads its FFN norm as post_attention_norm, has no attention-output bias and no rope factors */
function glmContext (c: LayerContext): LayerContext {
  return {
    ...c,
    w: (n) => {
      if (n === 'rope_freqs.weight' || n.endsWith('.attn_output.bias')) return undefined
      return c.w(n.endsWith('.ffn_norm.weight') ? n.replace('.ffn_norm.weight', '.post_attention_norm.weight') : n)
    }
  }
}

function glmTensors (hp: MoeHParams): TensorSpec[] {
  const dense = decoderTensors(hp, { outputBias: false }).filter((t) => {
    if (t.name.endsWith('.ffn_norm.weight') || t.name.endsWith('.attn_output.bias')) return false
    // only the leading dense layers keep ffn_gate / ffn_down / ffn_up
    return !(t.layer !== undefined && t.layer >= hp.nLayerDenseLead && /\.ffn_(gate|down|up)\.weight$/.test(t.name))
  })
  const nFfShexp = hp.nFfExp * hp.nExpertShared
  for (let i = 0; i < hp.nLayers; i++) {
    const L = (name: string, ne: number[], op: TensorSpec['op'], optional = false): TensorSpec => ({ name: `blk.${i}.${name}`, ne, layer: i, role: 'layer', op, optional })
    dense.push(
      L('attn_q_norm.weight', [hp.headDim], 'mul', true),
      L('attn_k_norm.weight', [hp.headDim], 'mul', true),
      L('post_attention_norm.weight', [hp.nEmbd], 'mul'))
    if (i < hp.nLayerDenseLead) continue
    dense.push(...moeTensors(hp, i, { expProbsB: true, scales: false }),
      L('ffn_gate_shexp.weight', [hp.nEmbd, nFfShexp], 'mul_mat'),
      L('ffn_down_shexp.weight', [nFfShexp, hp.nEmbd], 'mul_mat'),
      L('ffn_up_shexp.weight', [hp.nEmbd, nFfShexp], 'mul_mat'))
  }
  return dense
}

export const glm4moe: ArchSpec = {
  name: 'glm4moe',
  hparams: (m, base) => {
    const nextn = m.nonNegInt('nextn_predict_layers', 0)
    if (nextn >= base.nLayers) throw new UnsupportedModelError(`${m.gguf.path}: ${m.key('nextn_predict_layers')} = ${nextn} leaves no trunk layers of ${base.nLayers}`)
    const nLayers = base.nLayers - nextn
    const hp = { ...base, nLayers, ...(base.swaWindow !== undefined ? { swaWindow: base.swaWindow.slice(0, nLayers) } : {}) }
    moeAttentionChecks(m, hp, { partialRotary: true })
    const sections = m.raw(m.key('rope.dimension_sections'))
    if (typeof sections === 'object' && sections !== null && 'values' in sections && sections.values?.some((v) => Number(v) !== 0)) {
      throw new UnsupportedModelError(`${m.gguf.path}: multimodal RoPE (${m.key('rope.dimension_sections')}) is not supported`)
    }
    const nExpertShared = m.posInt('expert_shared_count')
    return moeHParams(m, hp, {
      nFfExp: m.posInt('expert_feed_forward_length'),
      nExpertShared,
      nLayerDenseLead: m.nonNegInt('leading_dense_block_count', 0),
      expertWeightsScale: m.float('expert_weights_scale', 0),
      expertWeightsNorm: m.bool('expert_weights_norm', false),
      gating: readGatingFunc(m, 'sigmoid')
    })
  },
  tensors: (hp) => glmTensors(hp as MoeHParams),
  // glm4-moe.cpp: kq_scale = 1/sqrt(head_dim), rope over n_rot dims
  buildLayer: (c, il, inpL) => buildLlamaLayer(glmContext(c), il, inpL, ROPE_MODE_NEOX, 1 / Math.sqrt(c.hp.headDim), glmFfn),
  buildOutput: buildDecoderOutput,
  nodesPerLayer: (hp) => moeNodesPerLayer(hp as MoeHParams) + 8,
  activationFloatsPerToken: (hp) => { const h = hp as MoeHParams; return moeActivationFloats(h, h.nFfExp * h.nExpertShared) }
}
