/**
 * llama generator with experts (Mixtral: general.architecture = llama). Without --opt experts it is the dense
 * llama generator. Options: experts, experts_used (2), ungated (no ffn_gate_exps: llama.cpp then runs silu(up)).
 * Experts are --ff wide (llama.cpp's llama reads no expert_feed_forward_length).
 */
import { F32, attentionTensors, decoderMetadata, embeddingTensors, headDimOf, llamaGen, vocabOf } from './llama.js'
import { expertTensors } from './qwen3moe.js'
import { optBool, optNum } from './types.js'
import type { ArchGenerator, GenOptions } from './types.js'

const experts = (o: GenOptions): number => optNum(o, 'experts', 0)

export const llamaWithExpertsGen: ArchGenerator = {
  name: 'llama',
  metadata: (o, a) => {
    if (experts(o) === 0) return llamaGen.metadata(o, a)
    const used = optNum(o, 'experts_used', 2)
    if (used < 1 || used > experts(o)) throw new Error(`--opt experts_used=${used} must be in [1, experts]`)
    return { ...decoderMetadata(o, a), [a('expert_count')]: { kind: 'u32', value: experts(o) }, [a('expert_used_count')]: { kind: 'u32', value: used } }
  },
  tensors: (o) => {
    if (experts(o) === 0) return llamaGen.tensors(o)
    const e = { experts: experts(o), used: optNum(o, 'experts_used', 2), ff: o.ff }
    const ungated = optBool(o, 'ungated', false)
    const out = embeddingTensors(o, vocabOf(o))
    for (let i = 0; i < o.layers; i++) {
      out.push(...attentionTensors(o, i), ...expertTensors(o, i, e).filter((t) => !(ungated && t.name.endsWith('ffn_gate_exps.weight'))))
      if (i === 0 && o.ropeFreqs === true) out.push({ name: 'rope_freqs.weight', ne: [headDimOf(o) / 2], type: F32, init: 'rope-factors' })
    }
    return out
  }
}
