/**
 * Every weight type of the pinned ggml CPU backend (the ggml type table, generated from ggml and checked at
 * startup) on a generated 3-layer llama whose every matrix — token_embd (get_rows) included — is of that
 * type: logits == node-llama-cpp for the prompt and 30 greedy decode steps, whole, split in 2 and one shard
 * per layer. Exact: the kernels are llama.cpp's, and each weight goes into the buffer type llama.cpp picks
 * (CPU_REPACK for the types it repacks on this CPU: with every weight forced into plain CPU buffers the
 * logits drift by 0.011 (mxfp4) … 0.023 (q4_K) on an AVX2 machine, so the test catches a wrong placement).
 * Flash attention off and on. Then mixes of types in one file, as llama-quantize writes Q4_K_M, Q3_K_M,
 * IQ2_XXS files (make-model --tensor-type).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SUPPORTED_TENSOR_TYPES } from '../../src/engine/index.js'
import { GGML_TYPE_TABLE } from '../../src/engine/gguf/ggml-type-table.js'
import { cpuWeightTypes } from '../../src/engine/native/ggml.js'
import { MODEL_TYPES } from '../../scripts/make-model.js'
import { generatedModel } from './helpers/generated-models.js'
import { Pipeline, compareWithReference, referenceLogits, splitRanges } from './helpers/reference.js'
import type { MakeModelOptions, ModelType } from '../../scripts/make-model.js'

const PROMPT = 'The quick brown fox jumps over the lazy dog because'
const STEPS = 30
const LAYERS = 3
/** the 512-token vocabulary of the bundled stories260k model: quantising a 32000 × 256 embedding to IQ types takes ~10 s each */
const VOCAB = 'models/stories260k-f32.gguf'
const TYPES = Object.keys(MODEL_TYPES) as ModelType[]
/** files as llama-quantize writes them: several types in one file (repacked and plain CPU buffers side by side) */
const MIXES: Array<{ name: string, type: ModelType, tensorTypes: MakeModelOptions['tensorTypes'] }> = [
  { name: 'Q4_K_M', type: 'q4_k', tensorTypes: [{ pattern: '^output\\.weight$|attn_v|ffn_down', type: 'q6_k' }] },
  { name: 'Q3_K_M', type: 'q3_k', tensorTypes: [{ pattern: '^output\\.weight$', type: 'q6_k' }, { pattern: 'attn_v', type: 'q5_k' }, { pattern: 'ffn_down|attn_output', type: 'q4_k' }] },
  { name: 'IQ2_XXS', type: 'iq2_xxs', tensorTypes: [{ pattern: '^token_embd', type: 'q2_k' }, { pattern: '^output\\.weight$', type: 'q5_k' }, { pattern: 'attn_v', type: 'q4_k' }] },
  { name: 'IQ4_XS + MXFP4', type: 'iq4_xs', tensorTypes: [{ pattern: 'ffn_(gate|up)', type: 'mxfp4' }, { pattern: '^output\\.weight$', type: 'q8_0' }, { pattern: '^token_embd', type: 'q4_0' }] }
]

describe('engine logits == node-llama-cpp for every ggml weight type', () => {
  it('make-model covers every type the engine supports, and the loaded ggml has kernels for each', () => {
    assert.deepEqual([...TYPES].map((t) => MODEL_TYPES[t]).sort((a, b) => a - b), GGML_TYPE_TABLE.filter((r) => r[4]).map((r) => r[0]))
    assert.deepEqual([...cpuWeightTypes()].sort((a, b) => a - b), GGML_TYPE_TABLE.filter((r) => r[4]).map((r) => r[0]))
    assert.equal(SUPPORTED_TENSOR_TYPES.length, TYPES.length)
  })

  const cases = [...TYPES.map((type) => ({ name: type, type, tensorTypes: undefined })), ...MIXES]
  for (const { name, type, tensorTypes } of cases) {
    for (const fa of [false, true]) {
      it(`${name} flashAttention=${fa}`, async () => {
        const path = generatedModel(type, { layers: LAYERS, vocabFrom: VOCAB, tensorTypes })
        const ref = await referenceLogits(path, PROMPT, STEPS, fa)
        for (const parts of [1, 2, LAYERS]) {
          const p = await Pipeline.load(path, splitRanges(LAYERS, parts), fa)
          try {
            const diff = await compareWithReference(p, ref)
            console.log(`# ${name} fa=${fa} ${parts} shard(s): max |diff| = ${diff} over ${ref.steps.length} steps`)
            assert.equal(diff, 0, `${parts} shard(s): logits differ from node-llama-cpp by up to ${diff}`)
          } finally {
            await p.dispose()
          }
        }
      })
    }
  }
})
