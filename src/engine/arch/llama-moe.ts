/**
 * The mixture-of-experts form of llama.cpp's llama architecture (Mixtral): ffn_gate_inp + ffn_*_exps instead of
 * the dense FFN when expert_count > 0 (src/models/llama.cpp). Experts are n_ff wide (feed_forward_length), the
 * gate experts optional, routing softmax → top-k → weights normalised; expert_weights_scale is never read (0).
 */
import { buildMoeFfn } from './moe-ffn.js'
import { moeAttentionChecks, moeHParams } from './moe-hparams.js'
import { moeTensors, moeWeights } from './moe-tensors.js'
import type { Tensor } from '../native/ggml.js'
import type { HParams } from '../hparams.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'
import type { LayerContext, TensorSpec } from './arch-spec.js'
import type { MoeHParams } from './moe-hparams.js'

export function llamaMoeHParams (m: MetadataReader, hp: HParams): MoeHParams {
  moeAttentionChecks(m, hp)
  return moeHParams(m, hp, { nFfExp: hp.nFf, expertWeightsScale: 0, expertWeightsNorm: true, gating: 'softmax' })
}

const DENSE_FFN = /\.ffn_(gate|down|up)\.weight$/

/** The dense tensor list with each layer's FFN replaced by the router and (n_embd, n_ff, n_expert) experts. */
export function llamaMoeTensors (hp: HParams, dense: TensorSpec[]): TensorSpec[] {
  const out = dense.filter((t) => !DENSE_FFN.test(t.name))
  for (let i = 0; i < hp.nLayers; i++) out.push(...moeTensors(hp as MoeHParams, i, { nFf: hp.nFf, gateOptional: true }))
  return out
}

/** build_moe_ffn(LLM_FFN_SILU, norm_w = true, w_scale = 0, SOFTMAX) for layer il. x: (nEmbd, nTokens) f32. */
export function llamaMoeFfn (c: LayerContext, il: number, x: Tensor): Tensor {
  const hp = c.hp as MoeHParams
  return buildMoeFfn(c, x, moeWeights(c, il), {
    nExpert: hp.nExpert, nExpertUsed: hp.nExpertUsed, activation: 'silu', normW: true, wScale: hp.expertWeightsScale, gating: 'softmax',
    nExpertGroups: hp.nExpertGroups, nGroupUsed: hp.nGroupUsed
  })
}
