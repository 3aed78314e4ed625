/**
 * Logits == node-llama-cpp for tiny generated models of the dense families beyond llama/qwen (gemma3, gemma2,
 * phi3, mistral3): the prompt and 30 greedy decode steps, whole, split in 2 and one shard per layer, flash
 * attention on and off. Sliding windows are 8 tokens, so the window hides cells within the test; the `wrap`
 * cases run an 800-token prompt in a 1024-cell context, where llama.cpp's sliding-window cache
 * (pad(min(1024, 8 + 513), 256) = 768 cells, node-llama-cpp's swaFullCache = false) wraps around as a ring:
 * the engine's cache is the same size and reuses the same cells in the same order. Exact equality is asserted.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadShard, readModelMetadata } from '../../src/engine/index.js'
import { SlidingWindowHistoryError } from '../../src/shared/errors/engine-errors.js'
import { generatedModel } from './helpers/generated-models.js'
import { Pipeline, compareWithReference, maxAbsDiff, referenceLogits, splitRanges } from './helpers/reference.js'
import type { MakeModelOptions, ModelType } from '../../scripts/make-model.js'

const PROMPT = 'The quick brown fox jumps over the lazy dog because'
const STEPS = 30
/** 800 tokens spread over the vocabulary */
const LONG_PROMPT = Array.from({ length: 800 }, (_, i) => 1 + ((i * 7919) % 31000))

interface Case { name: string, type: ModelType, fa: boolean, shape: Partial<MakeModelOptions>, wrap?: boolean }
const CASES: Case[] = [
  // 4 layers, pattern 2: layers 0 and 2 slide (window 8), 1 and 3 attend globally
  { name: 'gemma3 swa=8 pattern=2', type: 'f16', fa: false, shape: { arch: 'gemma3', layers: 4, archOptions: { swa: 8, pattern: 2 } } },
  // default pattern (5 local : 1 global), separate local rope base, linear scaling of the global layer, final softcap, GQA 4:1, head 64
  { name: 'gemma3 default pattern, rope scaling, softcap', type: 'q8_0', fa: true, shape: { arch: 'gemma3', layers: 6, heads: 8, kvHeads: 2, headDim: 64, archOptions: { swa: 8, freq_base_swa: 10000, scaling: 8, final_softcap: 30 } } },
  { name: 'gemma3 ring wraps', type: 'f16', fa: false, wrap: true, shape: { arch: 'gemma3', layers: 4, archOptions: { swa: 8, pattern: 2 } } },
  { name: 'gemma3 ring wraps', type: 'q8_0', fa: true, wrap: true, shape: { arch: 'gemma3', layers: 4, archOptions: { swa: 8, pattern: 2 } } },
  // every other layer slides; attention / final logit softcaps at llama.cpp's defaults (50 / 30), then small ones that bite
  { name: 'gemma2 default softcaps', type: 'f16', fa: false, shape: { arch: 'gemma2', layers: 4, archOptions: { swa: 8 } } },
  { name: 'gemma2 softcaps 20/15', type: 'q8_0', fa: true, shape: { arch: 'gemma2', layers: 4, heads: 8, kvHeads: 4, headDim: 32, archOptions: { swa: 8, attn_softcap: 20, final_softcap: 15 } } },
  // fused QKV, partial rotary (32 of 64 dims), LongRoPE long factors (context 512 > original 256), attn_factor
  { name: 'phi3 fused qkv, partial rotary, long factors', type: 'f16', fa: false, shape: { arch: 'phi3', layers: 3, archOptions: { rot: 32, longrope: true, orig_ctx: 256, attn_factor: 1.19 } } },
  // separate Q/K/V, GQA, short factors (context 512 <= original 4096)
  { name: 'phi3 separate qkv, short factors', type: 'q8_0', fa: true, shape: { arch: 'phi3', layers: 3, heads: 8, kvHeads: 2, archOptions: { fused: false, longrope: true, orig_ctx: 4096 } } },
  // Ministral 3 style: YaRN (factor 16, log multiplier, betas) and llama-4 attention temperature whose floor
  // scale (original context 8) changes the factor every 8 positions within the test; biases
  { name: 'mistral3 yarn + temperature + biases', type: 'f16', fa: false, shape: { arch: 'mistral3', layers: 3, archOptions: { yarn: 16, orig_ctx: 8, log_mul: 1, beta_fast: 32, beta_slow: 1, temp_scale: 0.1, bias: true } } },
  { name: 'mistral3 yarn + temperature, rope_freqs', type: 'q8_0', fa: true, shape: { arch: 'mistral3', layers: 3, heads: 8, kvHeads: 2, ropeFreqs: true, archOptions: { yarn: 4, orig_ctx: 8, temp_scale: 0.1 } } }
]

describe('dense families: engine logits == node-llama-cpp', () => {
  for (const c of CASES) {
    it(`${c.name} ${c.type} flashAttention=${c.fa}`, async () => {
      const path = generatedModel(c.type, c.shape)
      const meta = readModelMetadata(path)
      const ctx = c.wrap === true ? 1024 : 512
      const ref = await referenceLogits(path, c.wrap === true ? LONG_PROMPT : PROMPT, STEPS, c.fa, ctx)
      for (const parts of [...new Set([1, 2, meta.nLayers])]) {
        const p = await Pipeline.load(path, splitRanges(meta.nLayers, parts), c.fa, ctx)
        try {
          const diff = await compareWithReference(p, ref)
          console.log(`# ${c.name} ${c.type} fa=${c.fa} ${parts} shard(s): max |diff| = ${diff} over ${ref.steps.length} steps`)
          assert.equal(diff, 0, `${parts} shard(s): logits differ from node-llama-cpp by up to ${diff}`)
        } finally {
          await p.dispose()
        }
      }
    })
  }

  it('truncate keeps working inside the ring and is refused (typed) once the window before it was overwritten', async () => {
    const path = generatedModel('f16', { arch: 'gemma3', layers: 4, archOptions: { swa: 8, pattern: 2 } })
    const shard = await loadShard({ modelPath: path, range: { start: 0, end: 4 }, threads: 1 })
    try {
      const s = shard.createSession({ contextSize: 1024 })
      const first = await s.forward({ kind: 'tokens', tokens: Int32Array.from(LONG_PROMPT) })
      // the ring keeps positions 32…799: the window before position 10 (3…9) is gone
      assert.throws(() => s.truncate(10), SlidingWindowHistoryError)
      assert.equal(s.position, 800)
      // re-evaluating the tail puts it back into the cells it came from: same logits, bit for bit
      s.truncate(795)
      const again = await s.forward({ kind: 'tokens', tokens: Int32Array.from(LONG_PROMPT.slice(795)) })
      assert.ok(first.kind === 'logits' && again.kind === 'logits')
      assert.equal(maxAbsDiff(first.logits, again.logits), 0)
      s.dispose()
    } finally {
      await shard.dispose()
    }
  })

  it('the sliding window matters: the same gemma3 weights without a window give other logits', async () => {
    const shape = { arch: 'gemma3', layers: 4, archOptions: { swa: 8, pattern: 2 } }
    // the metadata reports the windows (the planner's per-layer KV bytes); a file without a window reports none
    assert.deepEqual(readModelMetadata(generatedModel('f16', shape)).swaWindow, [8, 0, 8, 0])
    assert.equal(readModelMetadata(generatedModel('f16', { ...shape, archOptions: { swa: 0 } })).swaWindow, undefined)
    const windowed = await referenceLogits(generatedModel('f16', shape), PROMPT, 2, false)
    const global = await referenceLogits(generatedModel('f16', { ...shape, archOptions: { swa: 0 } }), PROMPT, 2, false)
    assert.deepEqual(windowed.steps[0], global.steps[0])
    assert.ok(maxAbsDiff(windowed.logits[0]!, global.logits[0]!) > 1e-3, 'an 8-token window over a longer prompt must change the logits')
  })
})
