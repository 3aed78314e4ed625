/**
 * Our shard engine vs node-llama-cpp on real ggml: logits of the prompt and 30 greedy decode steps,
 * whole model, split in 2, and one shard per layer (hidden states through the tensor codec).
 * Expectation: bit-identical (max |diff| = 0): same kernels, same graph, same buffer types, 1 thread.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { readModelMetadata } from '../../src/engine/index.js'
import { Pipeline, compareWithReference, referenceLogits, splitRanges } from './helpers/reference.js'

const PROMPT = 'Once upon a time, there was a little dog'
const STEPS = 30

export const FIXTURES = [
  { path: 'models/stories260k-f32.gguf', fa: [false, true] },
  { path: 'test/fixtures/models/tinystories-656k-q8_0.gguf', fa: [false, true] },
  { path: 'test/fixtures/models/stories260k-qwen2-f32.gguf', fa: [false] },
  { path: 'test/fixtures/models/llama-2-tiny-random.gguf', fa: [false] }
]

describe('engine logits == node-llama-cpp (fixture models)', () => {
  after(() => { /* node-llama-cpp keeps no handles we own */ })
  for (const { path, fa } of FIXTURES) {
    for (const flash of fa) {
      it(`${path} flashAttention=${flash}`, async () => {
        const meta = readModelMetadata(path)
        const ref = await referenceLogits(path, PROMPT, STEPS, flash)
        const splits: Array<[string, number]> = [['whole', 1], ['2 shards', Math.min(2, meta.nLayers)], ['per layer', meta.nLayers]]
        for (const [label, parts] of splits) {
          const p = await Pipeline.load(path, splitRanges(meta.nLayers, parts), flash)
          try {
            const diff = await compareWithReference(p, ref)
            console.log(`# ${path} fa=${flash} ${label} (${parts}): max |diff| = ${diff} over ${ref.steps.length} steps`)
            assert.equal(diff, 0, `${label}: logits differ from node-llama-cpp by up to ${diff}`)
          } finally {
            await p.dispose()
          }
        }
      })
    }
  }
})
