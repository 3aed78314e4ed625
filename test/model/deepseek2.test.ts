/**
 * deepseek2 (DeepSeek V2 / V3 / R1, Kimi K2) logits == node-llama-cpp for generated models: multi-head latent
 * attention in the absorbed form (K-only cache), q LoRA or one attn_q, YaRN RoPE scaling, leading dense blocks,
 * MoE blocks with shared experts, softmax or sigmoid gating with exp_probs_b and group-limited routing; prompt +
 * 30 greedy decode steps, whole, split in 2 and one shard per layer, flash attention off and on; the legacy form
 * (unsplit attn_kv_b) runs as MHA, as llama.cpp does. Random router weights: the routing depends on the data.
 * Exactness is required.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { readModelMetadata } from '../../src/engine/index.js'
import { generatedModel } from './helpers/generated-models.js'
import { Pipeline, compareWithReference, referenceLogits, splitRanges } from './helpers/reference.js'
import type { MakeModelOptions, ModelType } from '../../scripts/make-model.js'

const PROMPT = 'The quick brown fox jumps over the lazy dog because'
const STEPS = 30

const LEGACY: Partial<MakeModelOptions> = {
  layers: 3, heads: 4, archOptions: { legacy: true, qLora: 64, denseLead: 1, experts: 8, expertsUsed: 2, groups: 4, groupsUsed: 2, gating: 'sigmoid', probsBias: true, weightsNorm: true, weightsScale: 2.5 }
}

const VARIANTS: Array<{ name: string, type: ModelType, shape: Partial<MakeModelOptions> }> = [
  // every block dense (leading_dense_block_count = block_count), one attn_q, no RoPE scaling
  { name: 'all dense, attn_q', type: 'f16', shape: { layers: 2, heads: 4, archOptions: {} } },
  // DeepSeek V2-Lite style: one attn_q, softmax gating, 2 shared experts, weights scale 1 (not applied); Q4_0 experts
  // (llama.cpp puts them into CPU_REPACK through its mul_mat_id trial on AVX2 machines)
  { name: 'V2-Lite style', type: 'q4_0', shape: { layers: 3, heads: 4, archOptions: { denseLead: 1, experts: 16, expertsUsed: 4, shared: 2, weightsScale: 1 } } },
  // DeepSeek V3 / R1 style: q LoRA, sigmoid gating + exp_probs_b, 4 expert groups of which 2 are kept, weights norm and
  // scale, YaRN with V3's yarn_log_multiplier (0.1 · mscale_all_dim 0.707); one multi-token-prediction block after the
  // trunk (nextn_predict_layers, as GLM-4.7-Flash files carry: not run, not counted in nLayers)
  {
    name: 'V3 style + MTP block', type: 'q8_0',
    shape: { layers: 3, heads: 4, archOptions: { nextn: 1, qLora: 64, denseLead: 1, experts: 8, expertsUsed: 2, groups: 4, groupsUsed: 2, gating: 'sigmoid', probsBias: true, weightsNorm: true, weightsScale: 2.5, yarn: true, yarnFactor: 4, yarnLogMul: 0.0707 } }
  },
  // Kimi K2 style: q LoRA, sigmoid + exp_probs_b without groups, 8 experts used, YaRN with mscale_all_dim 1 (log mul 0.1)
  {
    name: 'Kimi K2 style', type: 'f16',
    shape: { layers: 2, heads: 8, archOptions: { qLora: 64, denseLead: 1, experts: 16, expertsUsed: 8, gating: 'sigmoid', probsBias: true, weightsNorm: true, weightsScale: 2.827, yarn: true, yarnFactor: 32, yarnLogMul: 0.1 } }
  },
  // an older conversion (before llama.cpp split attn_kv_b into attn_k_b / attn_v_b, e.g. early R1 GGUFs): run as MHA
  { name: 'legacy attn_kv_b (MHA), V3 routing', type: 'q8_0', shape: LEGACY }
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

  it('metadata: multi-token-prediction blocks are not part of the trunk', () => {
    const v3 = VARIANTS.find((v) => v.name.startsWith('V3'))!
    const meta = readModelMetadata(generatedModel(v3.type, { arch: 'deepseek2', kvHeads: 1, ...v3.shape }))
    assert.equal(meta.nLayers, 3)
    assert.equal(meta.layerBytes.length, 3)
  })

  it('metadata: a legacy conversion keeps K and V per head (MHA)', () => {
    const path = generatedModel('q8_0', { arch: 'deepseek2', kvHeads: 1, ...LEGACY })
    // 4 heads × (qk_nope 32 + rope 16) K and 4 × v_head 32 V per cell
    assert.equal(readModelMetadata(path).kvBytesPerTokenPerLayer, 2 * (4 * 48 + 4 * 32))
  })

  it('metadata: the KV cache holds one kv_lora_rank + rope row per token and layer (no V)', () => {
    const path = generatedModel('f16', { arch: 'deepseek2', kvHeads: 1, layers: 2, heads: 4, archOptions: {} })
    // defaults: kv_lora_rank 64, qk_rope 16 → 80 f16 values per cell
    assert.equal(readModelMetadata(path).kvBytesPerTokenPerLayer, 2 * (64 + 16))
  })
})
