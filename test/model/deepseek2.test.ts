/**
 * deepseek2 (DeepSeek V2 / V3 / R1, Kimi K2) logits == node-llama-cpp for generated models: multi-head latent
 * attention in the absorbed form (K-only cache), q LoRA or one attn_q, YaRN RoPE scaling, leading dense blocks,
 * MoE blocks with shared experts, softmax or sigmoid gating with exp_probs_b and group-limited routing; prompt +
 * 30 greedy decode steps, whole, split in 2 and one shard per layer, flash attention off and on. Random router
 * weights: the routing depends on the data. Exactness is required.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { readModelMetadata } from '../../src/engine/index.js'
import { UnsupportedModelError } from '../../src/shared/errors/engine-errors.js'
import { generatedModel } from './helpers/generated-models.js'
import { Pipeline, compareWithReference, referenceLogits, splitRanges } from './helpers/reference.js'
import type { MakeModelOptions, ModelType } from '../../scripts/make-model.js'

const PROMPT = 'The quick brown fox jumps over the lazy dog because'
const STEPS = 30

const VARIANTS: Array<{ name: string, type: ModelType, shape: Partial<MakeModelOptions> }> = [
  // every block dense (leading_dense_block_count = block_count), one attn_q, no RoPE scaling
  { name: 'all dense, attn_q', type: 'f16', shape: { layers: 2, heads: 4, archOptions: {} } },
  // DeepSeek V2-Lite style: one attn_q, softmax gating, 2 shared experts, weights scale 1 (not applied); Q4_0 experts
  // (llama.cpp puts them into CPU_REPACK through its mul_mat_id trial on AVX2 machines)
  { name: 'V2-Lite style', type: 'q4_0', shape: { layers: 3, heads: 4, archOptions: { denseLead: 1, experts: 16, expertsUsed: 4, shared: 2, weightsScale: 1 } } },
  // DeepSeek V3 / R1 style: q LoRA, sigmoid gating + exp_probs_b, 4 expert groups of which 2 are kept, weights norm and
  // scale, YaRN with V3's yarn_log_multiplier (0.1 · mscale_all_dim 0.707)
  {
    name: 'V3 style', type: 'q8_0',
    shape: { layers: 3, heads: 4, archOptions: { qLora: 64, denseLead: 1, experts: 8, expertsUsed: 2, groups: 4, groupsUsed: 2, gating: 'sigmoid', probsBias: true, weightsNorm: true, weightsScale: 2.5, yarn: true, yarnFactor: 4, yarnLogMul: 0.0707 } }
  },
  // Kimi K2 style: q LoRA, sigmoid + exp_probs_b without groups, 8 experts used, YaRN with mscale_all_dim 1 (log mul 0.1)
  {
    name: 'Kimi K2 style', type: 'f16',
    shape: { layers: 2, heads: 8, archOptions: { qLora: 64, denseLead: 1, experts: 16, expertsUsed: 8, gating: 'sigmoid', probsBias: true, weightsNorm: true, weightsScale: 2.827, yarn: true, yarnFactor: 32, yarnLogMul: 0.1 } }
  }
]

describe('deepseek2 logits == node-llama-cpp (generated models)', () => {
  for (const { name, type, shape } of VARIANTS) {
    for (const fa of [false, true]) {
      it(`${name} ${type} flashAttention=${fa}`, async () => {
        const path = generatedModel(type, { arch: 'deepseek2', kvHeads: 1, ...shape })
        const meta = readModelMetadata(path)
        const ref = await referenceLogits(path, PROMPT, STEPS, fa)
        for (const parts of new Set([1, 2, meta.nLayers])) {
          const p = await Pipeline.load(path, splitRanges(meta.nLayers, parts), fa)
          try {
            const diff = await compareWithReference(p, ref)
            console.log(`# deepseek2 ${name} ${type} fa=${fa} ${parts} shard(s): max |diff| = ${diff} over ${ref.steps.length} steps`)
            assert.equal(diff, 0, `${parts} shard(s): logits differ from node-llama-cpp by up to ${diff}`)
          } finally {
            await p.dispose()
          }
        }
      })
    }
  }

  it('a legacy conversion (unsplit attn_kv_b, no key_length_mla) is refused with a typed error', () => {
    const path = generatedModel('f16', { arch: 'deepseek2', kvHeads: 1, layers: 2, heads: 4, archOptions: { legacy: true } })
    assert.throws(() => readModelMetadata(path), (e: unknown) => e instanceof UnsupportedModelError && /attn_kv_b/.test(e.message))
  })

  it('metadata: the KV cache holds one kv_lora_rank + rope row per token and layer (no V)', () => {
    const path = generatedModel('f16', { arch: 'deepseek2', kvHeads: 1, layers: 2, heads: 4, archOptions: {} })
    // defaults: kv_lora_rank 64, qk_rope 16 → 80 f16 values per cell
    assert.equal(readModelMetadata(path).kvBytesPerTokenPerLayer, 2 * (64 + 16))
  })
})
