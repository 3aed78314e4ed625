/**
 * gemma3 / gemma2 generators: the gemma block (post-attention and post-FFN norms, GELU-gated FFN; gemma3 adds
 * per-head Q/K norms). Options: swa=N (attention.sliding_window, default 8; 0 = none), pattern=N
 * (sliding_window_pattern period, gemma3 default 6 / gemma2 2; written only when given), freq_base_swa=F,
 * final_softcap=F, attn_softcap=F (gemma2), scaling=F (linear rope scaling factor of the global layers).
 */
import { F32, attentionTensors, decoderMetadata, embeddingTensors, ffnTensors, headDimOf, vocabOf } from './llama.js'
import { optNum } from './types.js'
import type { ArchGenerator, GenOptions, GenTensor } from './types.js'
import type { KvValue } from '../../src/engine/native/gguf-writer.js'

export function gemmaTensors (o: GenOptions, qkNorm: boolean): GenTensor[] {
  const out = embeddingTensors(o, vocabOf(o))
  for (let i = 0; i < o.layers; i++) {
    const b = `blk.${i}.`
    out.push(...attentionTensors(o, i), ...ffnTensors(o, i),
      { name: `${b}post_attention_norm.weight`, ne: [o.embd], type: F32, init: 'ones' },
      { name: `${b}post_ffw_norm.weight`, ne: [o.embd], type: F32, init: 'ones' })
    if (qkNorm) {
      out.push({ name: `${b}attn_q_norm.weight`, ne: [headDimOf(o)], type: F32, init: 'ones' },
        { name: `${b}attn_k_norm.weight`, ne: [headDimOf(o)], type: F32, init: 'ones' })
    }
  }
  return out
}

export function gemmaMetadata (o: GenOptions, a: (k: string) => string, gemma2: boolean): Record<string, KvValue> {
  const md: Record<string, KvValue> = { ...decoderMetadata(o, a), [a('rope.freq_base')]: { kind: 'f32', value: optNum(o, 'freq_base', gemma2 ? 10000 : 1000000) } }
  const swa = optNum(o, 'swa', 8)
  if (swa > 0) md[a('attention.sliding_window')] = { kind: 'u32', value: swa }
  if (o.arch.pattern !== undefined) md[a('attention.sliding_window_pattern')] = { kind: 'u32', value: optNum(o, 'pattern', 6) }
  if (o.arch.freq_base_swa !== undefined) md[a('rope.freq_base_swa')] = { kind: 'f32', value: optNum(o, 'freq_base_swa', 10000) }
  if (o.arch.final_softcap !== undefined) md[a('final_logit_softcapping')] = { kind: 'f32', value: optNum(o, 'final_softcap', 30) }
  if (o.arch.attn_softcap !== undefined) md[a('attn_logit_softcapping')] = { kind: 'f32', value: optNum(o, 'attn_softcap', 50) }
  if (o.arch.scaling !== undefined) {
    md[a('rope.scaling.type')] = { kind: 'str', value: 'linear' }
    md[a('rope.scaling.factor')] = { kind: 'f32', value: optNum(o, 'scaling', 8) }
  }
  return md
}

export const gemma3Gen: ArchGenerator = {
  name: 'gemma3',
  metadata: (o, a) => gemmaMetadata(o, a, false),
  tensors: (o) => gemmaTensors(o, true)
}
