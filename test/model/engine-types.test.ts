/**
 * Every weight type of the pinned ggml CPU backend (the ggml type table, generated from ggml and checked at
 * startup) on a generated 3-layer llama whose every matrix — token_embd (get_rows) included — is of that
 * type: logits == node-llama-cpp for the prompt and 30 greedy decode steps, whole, split in 2 and one shard
 * per layer. Exact: the kernels are llama.cpp's, and each weight goes into the buffer type llama.cpp picks
 * (CPU_REPACK for the types it repacks on this CPU). Flash attention off and on.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SUPPORTED_TENSOR_TYPES } from '../../src/engine/index.js'
import { GGML_TYPE_TABLE } from '../../src/engine/gguf/ggml-type-table.js'
import { cpuWeightTypes } from '../../src/engine/native/ggml.js'
import { MODEL_TYPES } from '../../scripts/make-model.js'
import { generatedModel } from './helpers/generated-models.js'
import { Pipeline, compareWithReference, referenceLogits, splitRanges } from './helpers/reference.js'
import type { ModelType } from '../../scripts/make-model.js'

const PROMPT = 'The quick brown fox jumps over the lazy dog because'
const STEPS = 30
const LAYERS = 3
/** the 512-token vocabulary of the bundled stories260k model: quantising a 32000 × 256 embedding to IQ types takes ~10 s each */
const VOCAB = 'models/stories260k-f32.gguf'
const TYPES = Object.keys(MODEL_TYPES) as ModelType[]

describe('engine logits == node-llama-cpp for every ggml weight type', () => {
  it('make-model covers every type the engine supports, and the loaded ggml has kernels for each', () => {
    assert.deepEqual([...TYPES].map((t) => MODEL_TYPES[t]).sort((a, b) => a - b), GGML_TYPE_TABLE.filter((r) => r[4]).map((r) => r[0]))
    assert.deepEqual([...cpuWeightTypes()].sort((a, b) => a - b), GGML_TYPE_TABLE.filter((r) => r[4]).map((r) => r[0]))
    assert.equal(SUPPORTED_TENSOR_TYPES.length, TYPES.length)
  })

  for (const type of TYPES) {
    for (const fa of [false, true]) {
      it(`${type} flashAttention=${fa}`, async () => {
        const path = generatedModel(type, { layers: LAYERS, vocabFrom: VOCAB })
        const ref = await referenceLogits(path, PROMPT, STEPS, fa)
        for (const parts of [1, 2, LAYERS]) {
          const p = await Pipeline.load(path, splitRanges(LAYERS, parts), fa)
          try {
            const diff = await compareWithReference(p, ref)
            console.log(`# ${type} fa=${fa} ${parts} shard(s): max |diff| = ${diff} over ${ref.steps.length} steps`)
            assert.equal(diff, 0, `${parts} shard(s): logits differ from node-llama-cpp by up to ${diff}`)
          } finally {
            await p.dispose()
          }
        }
      })
    }
  }
})
