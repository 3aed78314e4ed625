/** GGUF header parsing and model metadata in TypeScript (no native code), on the fixture models. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { readGguf } from '../../../src/engine/gguf/gguf-reader.js'
import { readModelMetadata } from '../../../src/engine/model-description.js'

// values from test/fixtures/models/README.md
const EXPECTED = [
  { path: 'models/stories260k-f32.gguf', architecture: 'llama', nLayers: 5, nEmbd: 64, nFf: 172, nHead: 8, nHeadKv: 4, nVocab: 512, contextLength: 2048 },
  { path: 'test/fixtures/models/tinystories-656k-q8_0.gguf', architecture: 'llama', nLayers: 2, nEmbd: 128, nFf: 384, nHead: 8, nHeadKv: 4, nVocab: 2048, contextLength: 512 },
  { path: 'test/fixtures/models/stories260k-qwen2-f32.gguf', architecture: 'qwen2', nLayers: 5, nEmbd: 64, nFf: 172, nHead: 8, nHeadKv: 4, nVocab: 512, contextLength: 2048 },
  { path: 'test/fixtures/models/llama-2-tiny-random.gguf', architecture: 'llama', nLayers: 1, nEmbd: 8, nFf: 32, nHead: 2, nHeadKv: 2, nVocab: 32000, contextLength: 4096 }
]

describe('readModelMetadata', () => {
  for (const e of EXPECTED) {
    it(e.path, () => {
      const m = readModelMetadata(e.path)
      const { path, ...want } = e
      for (const [k, v] of Object.entries(want)) assert.equal(m[k as keyof typeof m], v, k)
      assert.equal(m.layerBytes.length, e.nLayers)
      assert.ok(m.layerBytes.every((b) => b > 0))
      // every tensor byte is attributed to a layer, the embedding or the output (tied output counts token_embd twice)
      const f = readGguf(path)
      const data = [...f.tensors.values()].reduce((a, t) => a + t.bytes, 0)
      const tied = !f.tensors.has('output.weight')
      const attributed = m.layerBytes.reduce((a, b) => a + b, 0) + m.embeddingBytes + m.outputBytes - (tied ? m.embeddingBytes : 0)
      assert.equal(attributed, data)
      assert.equal(m.fileBytes, f.fileBytes)
      assert.equal(m.kvBytesPerTokenPerLayer, 2 * 2 * (e.nEmbd / e.nHead) * e.nHeadKv)
    })
  }
})
