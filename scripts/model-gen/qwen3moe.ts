/**
 * qwen3moe generator: the qwen3 block with every FFN a routed mixture of experts. Options (`--opt`):
 * experts (8), experts_used (2), expert_ff (the --ff value): width of one expert; groups / groups_used: expert groups
 * (group-limited routing); scales: per-expert ffn_*_exps.scale tensors. Random router weights make the routing depend on the data.
 */
import { F32, attentionTensors, decoderMetadata, embeddingTensors, headDimOf, vocabOf } from './llama.js'
import { optBool, optNum } from './types.js'
import type { ArchGenerator, GenOptions, GenTensor } from './types.js'

export interface ExpertShape { experts: number, used: number, ff: number }

export function expertShape (o: GenOptions): ExpertShape {
  const experts = optNum(o, 'experts', 8)
  const used = optNum(o, 'experts_used', 2)
  if (!Number.isInteger(experts) || !Number.isInteger(used) || used < 1 || used > experts) throw new Error(`--opt experts=${experts} experts_used=${used}: need 1 <= experts_used <= experts`)
  return { experts, used, ff: optNum(o, 'expert_ff', o.ff) }
}

/** ffn_norm, the router (f32, like llama-quantize leaves it) and the three 3-D expert tensors of layer i. */
export function expertTensors (o: GenOptions, i: number, e: ExpertShape): GenTensor[] {
  const b = `blk.${i}.`
  const s = 1 / Math.sqrt(o.embd)
  return [
    { name: `${b}ffn_norm.weight`, ne: [o.embd], type: F32, init: 'ones' },
    { name: `${b}ffn_gate_inp.weight`, ne: [o.embd, e.experts], type: F32, init: 'random', scale: 4 * s },
    { name: `${b}ffn_gate_exps.weight`, ne: [o.embd, e.ff, e.experts], type: o.weightType, init: 'random', scale: s },
    { name: `${b}ffn_down_exps.weight`, ne: [e.ff, o.embd, e.experts], type: o.weightType, init: 'random', scale: 1 / Math.sqrt(e.ff) },
    { name: `${b}ffn_up_exps.weight`, ne: [o.embd, e.ff, e.experts], type: o.weightType, init: 'random', scale: s }
  ]
}

/** expert_group_count / expert_group_used_count when --opt groups=N (group-limited routing, generic in llama.cpp) */
export function groupMetadata (o: GenOptions, a: (k: string) => string): ReturnType<ArchGenerator['metadata']> {
  const groups = optNum(o, 'groups', 0)
  if (groups === 0) return {}
  return {
    [a('expert_group_count')]: { kind: 'u32', value: groups },
    [a('expert_group_used_count')]: { kind: 'u32', value: optNum(o, 'groups_used', 1) }
  }
}

export const qwen3moeGen: ArchGenerator = {
  name: 'qwen3moe',
  metadata: (o, a) => {
    const e = expertShape(o)
    return {
      ...decoderMetadata(o, a),
      [a('expert_count')]: { kind: 'u32', value: e.experts },
      [a('expert_used_count')]: { kind: 'u32', value: e.used },
      [a('expert_feed_forward_length')]: { kind: 'u32', value: e.ff },
      ...groupMetadata(o, a)
    }
  },
  tensors: (o) => {
    const e = expertShape(o)
    const out = embeddingTensors(o, vocabOf(o))
    for (let i = 0; i < o.layers; i++) {
      out.push(...attentionTensors(o, i),
        { name: `blk.${i}.attn_q_norm.weight`, ne: [headDimOf(o)], type: F32, init: 'ones' },
        { name: `blk.${i}.attn_k_norm.weight`, ne: [headDimOf(o)], type: F32, init: 'ones' },
        ...expertTensors(o, i, e))
      // per-expert output scales (ffn_*_exps.scale, f32 [n_expert]): build_lora_mm_id multiplies each expert's product
      if (optBool(o, 'scales', false)) for (const n of ['gate', 'down', 'up']) out.push({ name: `blk.${i}.ffn_${n}_exps.scale`, ne: [e.experts], type: F32, init: 'random', scale: 1.5 })
    }
    return out
  }
}
