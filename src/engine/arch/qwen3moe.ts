/**
 * qwen3moe: port of llama.cpp src/models/qwen3moe.cpp — the qwen3 block (NEOX RoPE, per-head Q/K RMS norms) with
 * every FFN a routed mixture of experts: softmax gating, top-k, weights normalised (norm_w = true), no shared expert.
 */
import { ROPE_MODE_NEOX } from '../native/ggml.js'
import { buildDecoderOutput } from './attention.js'
import { decoderTensors } from './decoder-tensors.js'
import { buildLlamaLayer } from './llama.js'
import { buildMoeFfn } from './moe-ffn.js'
import { moeAttentionChecks, moeHParams } from './moe-hparams.js'
import { moeActivationFloats, moeNodesPerLayer, moeTensors, moeWeights } from './moe-tensors.js'
import type { ArchSpec } from './arch-spec.js'
import type { LayerFfn } from './llama.js'
import type { MoeHParams } from './moe-hparams.js'

/** the dense FFN tensors decoderTensors lists, which a MoE layer does not have */
export const DENSE_FFN = /\.ffn_(gate|down|up)\.weight$/

/** build_moe_ffn(LLM_FFN_SILU, norm_w = true, w_scale = hparams.expert_weights_scale (never read: 0), SOFTMAX) */
const qwen3moeFfn: LayerFfn = (c, il, x) => {
  const hp = c.hp as MoeHParams
  return buildMoeFfn(c, x, moeWeights(c, il), {
    nExpert: hp.nExpert, nExpertUsed: hp.nExpertUsed, activation: 'silu', normW: true, wScale: hp.expertWeightsScale, gating: 'softmax',
    // expert groups are generic in llama.cpp (read for every architecture, applied in build_moe_ffn)
    nExpertGroups: hp.nExpertGroups, nGroupUsed: hp.nGroupUsed
  })
}

export const qwen3moe: ArchSpec = {
  name: 'qwen3moe',
  hparams: (m, hp) => {
    moeAttentionChecks(m, hp)
    // n_ff_exp = expert_feed_forward_length, else n_ff / n_expert_used (load_arch_tensors)
    const nFfExp = m.nonNegInt('expert_feed_forward_length', 0)
    return moeHParams(m, hp, {
      nFfExp: nFfExp > 0 ? nFfExp : (hp.nExpertUsed > 0 ? Math.floor(hp.nFf / hp.nExpertUsed) : 0),
      expertWeightsScale: 0, expertWeightsNorm: true, gating: 'softmax'
    })
  },
  tensors: (hp) => {
    const out = decoderTensors(hp, { outputBias: false, qkNorm: true }).filter((t) => !DENSE_FFN.test(t.name))
    for (let i = 0; i < hp.nLayers; i++) out.push(...moeTensors(hp as MoeHParams, i))
    return out
  },
  // qwen3moe.cpp: no rope factors, kq_scale = 1/sqrt(head_dim)
  buildLayer: (c, il, inpL) => buildLlamaLayer({ ...c, w: (n) => n === 'rope_freqs.weight' ? undefined : c.w(n) }, il, inpL, ROPE_MODE_NEOX, 1 / Math.sqrt(c.hp.headDim), qwen3moeFfn),
  buildOutput: buildDecoderOutput,
  nodesPerLayer: (hp) => moeNodesPerLayer(hp as MoeHParams),
  activationFloatsPerToken: (hp) => moeActivationFloats(hp as MoeHParams)
}
