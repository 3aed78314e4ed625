/**
 * glm4moe generator (GLM-4.5 layout). Options: experts (8), experts_used (2), expert_ff (--ff), shared (1: shared
 * experts, each expert_ff wide), lead (1: leading dense layers), rot (head_dim / 2: partial rotary dims),
 * qk_norm (false), norm (true: expert_weights_norm), scale (1: expert_weights_scale), gating (unset = sigmoid;
 * 1 softmax, 2 sigmoid, 3 softmax_weight), groups / groups_used, nextn (0: extra MTP blocks in block_count,
 * their tensors absent as in a trunk-only file).
 */
import { F32, attentionTensors, decoderMetadata, embeddingTensors, ffnTensors, headDimOf, vocabOf } from './llama.js'
import { expertShape, expertTensors, groupMetadata } from './qwen3moe.js'
import { optBool, optNum } from './types.js'
import type { ArchGenerator, GenTensor } from './types.js'

export const glm4moeGen: ArchGenerator = {
  name: 'glm4moe',
  metadata: (o, a) => {
    const e = expertShape(o)
    const nextn = optNum(o, 'nextn', 0)
    const gating = optNum(o, 'gating', 0)
    return {
      ...decoderMetadata(o, a),
      [a('block_count')]: { kind: 'u32', value: o.layers + nextn },
      ...(nextn > 0 ? { [a('nextn_predict_layers')]: { kind: 'u32', value: nextn } } : {}),
      [a('rope.dimension_count')]: { kind: 'u32', value: optNum(o, 'rot', headDimOf(o) / 2) },
      [a('expert_count')]: { kind: 'u32', value: e.experts },
      [a('expert_used_count')]: { kind: 'u32', value: e.used },
      [a('expert_feed_forward_length')]: { kind: 'u32', value: e.ff },
      [a('expert_shared_count')]: { kind: 'u32', value: optNum(o, 'shared', 1) },
      [a('leading_dense_block_count')]: { kind: 'u32', value: optNum(o, 'lead', 1) },
      [a('expert_weights_norm')]: { kind: 'bool', value: optBool(o, 'norm', true) },
      [a('expert_weights_scale')]: { kind: 'f32', value: optNum(o, 'scale', 1) },
      ...(gating > 0 ? { [a('expert_gating_func')]: { kind: 'u32', value: gating } } : {}),
      ...groupMetadata(o, a)
    }
  },
  tensors: (o) => {
    const e = expertShape(o)
    const lead = optNum(o, 'lead', 1)
    const nShared = optNum(o, 'shared', 1)
    const hd = headDimOf(o)
    const out = embeddingTensors(o, vocabOf(o))
    for (let i = 0; i < o.layers; i++) {
      const b = `blk.${i}.`
      out.push(...attentionTensors(o, i),
        { name: `${b}attn_q.bias`, ne: [hd * o.heads], type: F32, init: 'random', scale: 0.1 },
        { name: `${b}attn_k.bias`, ne: [hd * o.kvHeads], type: F32, init: 'random', scale: 0.1 },
        { name: `${b}attn_v.bias`, ne: [hd * o.kvHeads], type: F32, init: 'random', scale: 0.1 },
        { name: `${b}post_attention_norm.weight`, ne: [o.embd], type: F32, init: 'ones' })
      if (optBool(o, 'qk_norm', false)) {
        out.push({ name: `${b}attn_q_norm.weight`, ne: [hd], type: F32, init: 'ones' }, { name: `${b}attn_k_norm.weight`, ne: [hd], type: F32, init: 'ones' })
      }
      if (i < lead) {
        out.push(...ffnTensors(o, i).filter((t) => !t.name.endsWith('ffn_norm.weight')))
        continue
      }
      const sff = e.ff * nShared
      const shared: GenTensor[] = [
        { name: `${b}exp_probs_b.bias`, ne: [e.experts], type: F32, init: 'random', scale: 0.5 },
        { name: `${b}ffn_gate_shexp.weight`, ne: [o.embd, sff], type: o.weightType, init: 'random', scale: 1 / Math.sqrt(o.embd) },
        { name: `${b}ffn_down_shexp.weight`, ne: [sff, o.embd], type: o.weightType, init: 'random', scale: 1 / Math.sqrt(sff) },
        { name: `${b}ffn_up_shexp.weight`, ne: [o.embd, sff], type: o.weightType, init: 'random', scale: 1 / Math.sqrt(o.embd) }
      ]
      out.push(...expertTensors(o, i, e).filter((t) => !t.name.endsWith('ffn_norm.weight')), ...shared)
    }
    return out
  }
}
