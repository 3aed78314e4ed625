/**
 * mistral3 generator: the llama block. Options: yarn=F (rope.scaling.type yarn, factor F), orig_ctx=N
 * (rope.scaling.original_context_length; also the attention temperature's floor scale), log_mul=F
 * (rope.scaling.yarn_log_multiplier), beta_fast=F, beta_slow=F, temp_scale=F (attention.temperature_scale),
 * bias=true (attn_output and FFN biases); --rope-freqs adds llama 3 style rope_freqs.weight.
 */
import { F32, attentionTensors, decoderMetadata, embeddingTensors, ffnTensors, headDimOf, vocabOf } from './llama.js'
import { optBool, optNum } from './types.js'
import type { ArchGenerator, GenOptions, GenTensor } from './types.js'
import type { KvValue } from '../../src/engine/native/gguf-writer.js'

function mistral3Tensors (o: GenOptions): GenTensor[] {
  const out = embeddingTensors(o, vocabOf(o))
  if (o.ropeFreqs === true) out.push({ name: 'rope_freqs.weight', ne: [headDimOf(o) / 2], type: F32, init: 'rope-factors' })
  for (let i = 0; i < o.layers; i++) {
    out.push(...attentionTensors(o, i), ...ffnTensors(o, i))
    if (optBool(o, 'bias', false)) {
      const b = `blk.${i}.`
      out.push({ name: `${b}attn_output.bias`, ne: [o.embd], type: F32, init: 'random', scale: 0.1 },
        { name: `${b}ffn_gate.bias`, ne: [o.ff], type: F32, init: 'random', scale: 0.1 },
        { name: `${b}ffn_up.bias`, ne: [o.ff], type: F32, init: 'random', scale: 0.1 },
        { name: `${b}ffn_down.bias`, ne: [o.embd], type: F32, init: 'random', scale: 0.1 })
    }
  }
  return out
}

export const mistral3Gen: ArchGenerator = {
  name: 'mistral3',
  metadata: (o, a) => {
    const md: Record<string, KvValue> = { ...decoderMetadata(o, a) }
    const set = (opt: string, key: string, kind: 'u32' | 'f32'): void => { if (o.arch[opt] !== undefined) md[a(key)] = { kind, value: optNum(o, opt, 0) } }
    if (o.arch.yarn !== undefined) {
      md[a('rope.scaling.type')] = { kind: 'str', value: 'yarn' }
      md[a('rope.scaling.factor')] = { kind: 'f32', value: optNum(o, 'yarn', 4) }
    }
    set('orig_ctx', 'rope.scaling.original_context_length', 'u32')
    set('log_mul', 'rope.scaling.yarn_log_multiplier', 'f32')
    set('beta_fast', 'rope.scaling.yarn_beta_fast', 'f32')
    set('beta_slow', 'rope.scaling.yarn_beta_slow', 'f32')
    set('temp_scale', 'attention.temperature_scale', 'f32')
    return md
  },
  tensors: mistral3Tensors
}
