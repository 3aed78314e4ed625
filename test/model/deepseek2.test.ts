/**
 * deepseek2 (DeepSeek V2 / V3 / R1, Kimi K2) logits == node-llama-cpp for generated models: multi-head latent
 * attention in the absorbed form (K-only cache), q LoRA or one attn_q, YaRN RoPE scaling; prompt + 30 greedy
 * decode steps, whole, split in 2 and one shard per layer, flash attention off and on. Exactness is required.
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
  // V2-Lite style attention: one attn_q, no RoPE scaling
  { name: 'dense, attn_q', type: 'f16', shape: { layers: 2, heads: 4, archOptions: {} } },
  // V3 / Kimi style attention: q LoRA, YaRN with DeepSeek V3's yarn_log_multiplier (0.1 · mscale_all_dim 0.707)
  { name: 'dense, q lora, yarn', type: 'q8_0', shape: { layers: 3, heads: 4, archOptions: { qLora: 64, yarn: true, yarnFactor: 4, yarnLogMul: 0.0707 } } }
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
