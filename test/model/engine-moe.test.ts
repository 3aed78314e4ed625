/**
 * Mixture-of-experts architectures: logits == node-llama-cpp for the prompt and 30 greedy decode steps on tiny
 * generated models (random router weights: the routing depends on the data), whole, split in 2 and one shard per
 * layer, flash attention on and off. Exactness is required: the experts go into the buffer type llama.cpp picks
 * with its mul_mat_id trial (CPU_REPACK for Q4_0 / Q4_K experts on AVX2 machines).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { readModelMetadata } from '../../src/engine/index.js'
import { generatedModel } from './helpers/generated-models.js'
import { Pipeline, compareWithReference, referenceLogits, splitRanges } from './helpers/reference.js'
import type { MakeModelOptions, ModelType } from '../../scripts/make-model.js'

const PROMPT = 'The quick brown fox jumps over the lazy dog because'
const STEPS = 30

interface Case { name: string, type: ModelType, shape: Partial<MakeModelOptions> }
const CASES: Case[] = [
  { name: 'qwen3moe 8 experts, 2 used', type: 'q8_0', shape: { arch: 'qwen3moe', layers: 3, archOptions: { experts: 8, experts_used: 2 } } },
  // group-limited routing (DeepSeek V3 style, generic in llama.cpp): 16 experts in 4 groups, the best 2 groups kept
  { name: 'qwen3moe 16 experts in 4 groups (2 used), 4 used', type: 'q8_0', shape: { arch: 'qwen3moe', layers: 2, archOptions: { experts: 16, experts_used: 4, groups: 4, groups_used: 2, expert_ff: 128 } } },
  // per-expert scale tensors (ffn_{gate,up,down}_exps.scale): repeated over tokens, picked per selected expert, multiplied in
  { name: 'qwen3moe per-expert scales, 8 experts (3 used)', type: 'q8_0', shape: { arch: 'qwen3moe', layers: 2, archOptions: { experts: 8, experts_used: 3, expert_ff: 128, scales: true } } },
  { name: 'qwen3moe q4_k 4 experts, 1 used (cont of a single expert)', type: 'q4_k', shape: { arch: 'qwen3moe', layers: 2, archOptions: { experts: 4, experts_used: 1, expert_ff: 256 } } },
  // Mixtral: the llama architecture with experts (n_ff wide), NORMAL RoPE; rope_freqs too
  { name: 'llama (Mixtral) 8 experts, 2 used', type: 'q4_0', shape: { layers: 2, ropeFreqs: true, archOptions: { experts: 8, experts_used: 2 } } },
  // experts without ffn_gate_exps: llama.cpp runs silu(up) instead of swiglu
  { name: 'llama (Mixtral) ungated 4 experts, 3 used', type: 'f16', shape: { layers: 2, archOptions: { experts: 4, experts_used: 3, ungated: true } } },
  // GLM-4.5: 1 dense lead layer, sigmoid gating + exp_probs_b, shared expert, weights norm + scale 2.5, partial
  // rotary (32 of 64 dims), Q/K/V biases, post_attention_norm; a trunk-only file with one nextn (MTP) block
  { name: 'glm4moe lead 1, 8 experts (2 used) + 1 shared, sigmoid, nextn 1', type: 'q8_0', shape: { arch: 'glm4moe', layers: 3, archOptions: { experts: 8, experts_used: 2, expert_ff: 128, scale: 2.5, nextn: 1 } } },
  // GLM-4.5 355B variant: Q/K norms; softmax gating, no weight norm, 2 shared experts, 2 dense lead layers
  { name: 'glm4moe qk_norm, softmax gating, 2 shared, lead 2', type: 'q4_k', shape: { arch: 'glm4moe', layers: 3, archOptions: { experts: 4, experts_used: 2, expert_ff: 256, shared: 2, lead: 2, qk_norm: true, gating: 1, norm: false } } },
  // gpt-oss: attention sinks, sliding window 16 on even layers, YaRN ×32 (original context 256), Q/K/V/output and
  // per-expert biases, router bias, softmax over the selected logits, swiglu_oai; MXFP4 experts as the real files
  { name: 'gpt-oss mxfp4 experts, 4 experts (2 used), swa 16, yarn 32', type: 'q8_0', shape: { arch: 'gpt-oss', layers: 4, tensorTypes: [{ pattern: '_exps', type: 'mxfp4' }], archOptions: { experts: 4, experts_used: 2 } } },
  { name: 'gpt-oss no yarn, rope.freq_base_swa, 8 experts (4 used)', type: 'f16', shape: { arch: 'gpt-oss', layers: 2, archOptions: { experts: 8, experts_used: 4, yarn: 0, swa_base: 10000, swa: 8 } } }
]

describe('MoE engine logits == node-llama-cpp (generated models)', () => {
  for (const { name, type, shape } of CASES) {
    for (const fa of [false, true]) {
      it(`${name} ${type} flashAttention=${fa}`, async () => {
        const path = generatedModel(type, shape)
        const meta = readModelMetadata(path)
        const ref = await referenceLogits(path, PROMPT, STEPS, fa)
        for (const parts of [...new Set([1, 2, meta.nLayers])]) {
          const p = await Pipeline.load(path, splitRanges(meta.nLayers, parts), fa)
          try {
            const diff = await compareWithReference(p, ref)
            console.log(`# ${name} ${type} fa=${fa} ${parts} shard(s): max |diff| = ${diff} over ${ref.steps.length} steps`)
            assert.equal(diff, 0, `${parts} shard(s): logits differ from node-llama-cpp by up to ${diff}`)
          } finally {
            await p.dispose()
          }
        }
      })
    }
  }
})
