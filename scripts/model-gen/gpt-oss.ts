/**
 * gpt-oss generator. Options: experts (4), experts_used (2), expert_ff (--ff), swa (sliding window, 16; every
 * other layer from layer 0), yarn (rope scaling factor, 0 = none; default 32 with original context 256 as the
 * real models' 32 / 4096), swa_base (rope.freq_base_swa, unset). Experts in another type: --tensor-type _exps=mxfp4.
 */
import { F32, attentionTensors, decoderMetadata, embeddingTensors, headDimOf, vocabOf } from './llama.js'
import { expertShape, expertTensors } from './qwen3moe.js'
import { optNum } from './types.js'
import type { ArchGenerator, GenTensor } from './types.js'

export const gptOssGen: ArchGenerator = {
  name: 'gpt-oss',
  metadata: (o, a) => {
    const e = expertShape(o)
    const yarn = optNum(o, 'yarn', 32)
    const swaBase = optNum(o, 'swa_base', 0)
    return {
      ...decoderMetadata(o, a),
      [a('expert_count')]: { kind: 'u32', value: e.experts },
      [a('expert_used_count')]: { kind: 'u32', value: e.used },
      [a('expert_feed_forward_length')]: { kind: 'u32', value: e.ff },
      [a('attention.sliding_window')]: { kind: 'u32', value: optNum(o, 'swa', 16) },
      [a('rope.freq_base')]: { kind: 'f32', value: 150000 },
      ...(swaBase > 0 ? { [a('rope.freq_base_swa')]: { kind: 'f32', value: swaBase } } : {}),
      ...(yarn > 0
        ? {
            [a('rope.scaling.type')]: { kind: 'str', value: 'yarn' },
            [a('rope.scaling.factor')]: { kind: 'f32', value: yarn },
            [a('rope.scaling.original_context_length')]: { kind: 'u32', value: 256 }
          }
        : {})
    }
  },
  tensors: (o) => {
    const e = expertShape(o)
    const hd = headDimOf(o)
    const out = embeddingTensors({ ...o, tied: false }, vocabOf(o))
    for (let i = 0; i < o.layers; i++) {
      const b = `blk.${i}.`
      const bias = (name: string, ne: number[], scale = 0.1): GenTensor => ({ name: `${b}${name}`, ne, type: F32, init: 'random', scale })
      out.push(...attentionTensors(o, i),
        { name: `${b}post_attention_norm.weight`, ne: [o.embd], type: F32, init: 'ones' },
        bias('attn_q.bias', [hd * o.heads]), bias('attn_k.bias', [hd * o.kvHeads]), bias('attn_v.bias', [hd * o.kvHeads]),
        bias('attn_output.bias', [o.embd]),
        bias('attn_sinks.weight', [o.heads], 2),
        ...expertTensors(o, i, e).filter((t) => !t.name.endsWith('ffn_norm.weight')),
        bias('ffn_gate_inp.bias', [e.experts], 0.5),
        bias('ffn_gate_exps.bias', [e.ff, e.experts]), bias('ffn_down_exps.bias', [o.embd, e.experts]), bias('ffn_up_exps.bias', [e.ff, e.experts]))
    }
    return out
  }
}
