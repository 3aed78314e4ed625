/** Generators for the llama-family dense decoders: llama, qwen2 (Q/K/V biases), qwen3 (per-head Q/K norms). */
import { optBool } from './types.js'
import type { ArchGenerator, GenOptions, GenTensor } from './types.js'

export const F32 = 0

export function headDimOf (o: GenOptions): number { return o.headDim ?? o.embd / o.heads }

/** token_embd, output_norm and (unless tied) output. */
export function embeddingTensors (o: GenOptions, nVocab: number): GenTensor[] {
  const out: GenTensor[] = [
    { name: 'token_embd.weight', ne: [o.embd, nVocab], type: o.weightType, init: 'random', scale: 1 },
    { name: 'output_norm.weight', ne: [o.embd], type: F32, init: 'ones' }
  ]
  if (o.tied !== true) out.push({ name: 'output.weight', ne: [o.embd, nVocab], type: o.weightType, init: 'random', scale: 1 / Math.sqrt(o.embd) })
  return out
}

/** One llama block's attention tensors (norm, Q, K, V, output). */
export function attentionTensors (o: GenOptions, i: number): GenTensor[] {
  const hd = headDimOf(o)
  const nq = hd * o.heads
  const nkv = hd * o.kvHeads
  const s = 1 / Math.sqrt(o.embd)
  const b = `blk.${i}.`
  return [
    { name: `${b}attn_norm.weight`, ne: [o.embd], type: F32, init: 'ones' },
    { name: `${b}attn_q.weight`, ne: [o.embd, nq], type: o.weightType, init: 'random', scale: 2 * s },
    { name: `${b}attn_k.weight`, ne: [o.embd, nkv], type: o.weightType, init: 'random', scale: 2 * s },
    { name: `${b}attn_v.weight`, ne: [o.embd, nkv], type: o.weightType, init: 'random', scale: s },
    { name: `${b}attn_output.weight`, ne: [nq, o.embd], type: o.weightType, init: 'random', scale: 1 / Math.sqrt(nq) }
  ]
}

/** One llama block's dense SwiGLU FFN tensors (norm, gate, down, up). */
export function ffnTensors (o: GenOptions, i: number): GenTensor[] {
  const s = 1 / Math.sqrt(o.embd)
  const b = `blk.${i}.`
  return [
    { name: `${b}ffn_norm.weight`, ne: [o.embd], type: F32, init: 'ones' },
    { name: `${b}ffn_gate.weight`, ne: [o.embd, o.ff], type: o.weightType, init: 'random', scale: s },
    { name: `${b}ffn_down.weight`, ne: [o.ff, o.embd], type: o.weightType, init: 'random', scale: 1 / Math.sqrt(o.ff) },
    { name: `${b}ffn_up.weight`, ne: [o.embd, o.ff], type: o.weightType, init: 'random', scale: s }
  ]
}

/** The keys every llama-family file carries. */
export function decoderMetadata (o: GenOptions, a: (k: string) => string): ReturnType<ArchGenerator['metadata']> {
  const hd = headDimOf(o)
  return {
    [a('context_length')]: { kind: 'u32', value: o.context },
    [a('embedding_length')]: { kind: 'u32', value: o.embd },
    [a('block_count')]: { kind: 'u32', value: o.layers },
    [a('feed_forward_length')]: { kind: 'u32', value: o.ff },
    [a('attention.head_count')]: { kind: 'u32', value: o.heads },
    [a('attention.head_count_kv')]: { kind: 'u32', value: o.kvHeads },
    [a('attention.key_length')]: { kind: 'u32', value: hd },
    [a('attention.value_length')]: { kind: 'u32', value: hd },
    [a('attention.layer_norm_rms_epsilon')]: { kind: 'f32', value: 1e-5 },
    [a('rope.dimension_count')]: { kind: 'u32', value: hd },
    [a('rope.freq_base')]: { kind: 'f32', value: 10000 }
  }
}

function denseTensors (o: GenOptions, nVocab: number, extra: (i: number) => GenTensor[]): GenTensor[] {
  const out = embeddingTensors(o, nVocab)
  for (let i = 0; i < o.layers; i++) {
    out.push(...attentionTensors(o, i), ...ffnTensors(o, i), ...extra(i))
    if (i === 0 && o.ropeFreqs === true) out.push({ name: 'rope_freqs.weight', ne: [headDimOf(o) / 2], type: F32, init: 'rope-factors' })
  }
  return out
}

/** The vocabulary size is known only at write time (copied from the vocab GGUF): generators get it via o.arch.nVocab. */
export function vocabOf (o: GenOptions): number { return o.arch.nVocab as number }

export const llamaGen: ArchGenerator = {
  name: 'llama',
  metadata: decoderMetadata,
  tensors: (o) => denseTensors(o, vocabOf(o), () => [])
}

export const qwen2Gen: ArchGenerator = {
  name: 'qwen2',
  metadata: decoderMetadata,
  tensors: (o) => denseTensors(o, vocabOf(o), (i) => {
    if (!optBool(o, 'bias', true)) return []
    const hd = headDimOf(o)
    const b = `blk.${i}.`
    return [
      { name: `${b}attn_q.bias`, ne: [hd * o.heads], type: F32, init: 'random', scale: 0.1 },
      { name: `${b}attn_k.bias`, ne: [hd * o.kvHeads], type: F32, init: 'random', scale: 0.1 },
      { name: `${b}attn_v.bias`, ne: [hd * o.kvHeads], type: F32, init: 'random', scale: 0.1 }
    ]
  })
}

export const qwen3Gen: ArchGenerator = {
  name: 'qwen3',
  metadata: decoderMetadata,
  tensors: (o) => denseTensors(o, vocabOf(o), (i) => [
    { name: `blk.${i}.attn_q_norm.weight`, ne: [headDimOf(o)], type: F32, init: 'ones' },
    { name: `blk.${i}.attn_k_norm.weight`, ne: [headDimOf(o)], type: F32, init: 'ones' }
  ])
}
