/**
 * phi3 generator: fused attn_qkv (fused=false: separate Q/K/V), attn_output [embd, embd], fused gate|up
 * ffn_up [embd, 2·ff]. Options: rot=N (rope.dimension_count, partial rotary), longrope=true (rope_factors_long
 * = 1…8 ramp, rope_factors_short = ones), orig_ctx=N (rope.scaling.original_context_length: the context above
 * which llama.cpp picks the long factors), attn_factor=F (rope.scaling.attn_factor).
 */
import { F32, attentionTensors, decoderMetadata, embeddingTensors, headDimOf, vocabOf } from './llama.js'
import { optBool, optNum } from './types.js'
import type { ArchGenerator, GenOptions, GenTensor } from './types.js'
import type { KvValue } from '../../src/engine/native/gguf-writer.js'

function phi3Tensors (o: GenOptions): GenTensor[] {
  const out = embeddingTensors(o, vocabOf(o))
  const hd = headDimOf(o)
  const s = 1 / Math.sqrt(o.embd)
  const rot = optNum(o, 'rot', hd)
  if (optBool(o, 'longrope', false)) {
    out.push({ name: 'rope_factors_long.weight', ne: [rot / 2], type: F32, init: 'rope-factors' },
      { name: 'rope_factors_short.weight', ne: [rot / 2], type: F32, init: 'ones' })
  }
  for (let i = 0; i < o.layers; i++) {
    const b = `blk.${i}.`
    if (optBool(o, 'fused', true)) {
      out.push({ name: `${b}attn_norm.weight`, ne: [o.embd], type: F32, init: 'ones' },
        { name: `${b}attn_qkv.weight`, ne: [o.embd, hd * (o.heads + 2 * o.kvHeads)], type: o.weightType, init: 'random', scale: 2 * s },
        { name: `${b}attn_output.weight`, ne: [o.embd, o.embd], type: o.weightType, init: 'random', scale: s })
    } else {
      out.push(...attentionTensors(o, i))
    }
    out.push({ name: `${b}ffn_norm.weight`, ne: [o.embd], type: F32, init: 'ones' },
      { name: `${b}ffn_up.weight`, ne: [o.embd, 2 * o.ff], type: o.weightType, init: 'random', scale: s },
      { name: `${b}ffn_down.weight`, ne: [o.ff, o.embd], type: o.weightType, init: 'random', scale: 1 / Math.sqrt(o.ff) })
  }
  return out
}

export const phi3Gen: ArchGenerator = {
  name: 'phi3',
  metadata: (o, a) => {
    const md: Record<string, KvValue> = {
      ...decoderMetadata(o, a),
      [a('rope.dimension_count')]: { kind: 'u32', value: optNum(o, 'rot', headDimOf(o)) },
      // llama.cpp's vocab loader treats a general.name containing "phi3" as Phi-3's tokenizer (it needs <|endoftext|>,
      // absent from the Llama 2 vocabulary these models borrow)
      'general.name': { kind: 'str', value: `random-p-3-${o.layers}x${o.embd}` }
    }
    if (o.arch.orig_ctx !== undefined) md[a('rope.scaling.original_context_length')] = { kind: 'u32', value: optNum(o, 'orig_ctx', 4096) }
    if (o.arch.attn_factor !== undefined) md[a('rope.scaling.attn_factor')] = { kind: 'f32', value: optNum(o, 'attn_factor', 1) }
    return md
  },
  tensors: phi3Tensors
}
