import assert from 'node:assert/strict'
import { test } from 'node:test'
import { modelCardFromMetadata } from '../../../src/node/pipeline/model-card.js'
import { plan } from '../../../src/planner/index.js'
import type { ModelMetadata } from '../../../src/engine/types.js'
import { asModelId, asNodeId } from '../../../src/shared/ids.js'

test('a GQA model card: KV bytes from the KV heads; the planner accepts it', () => {
  const meta: ModelMetadata = {
    architecture: 'llama', nLayers: 4, nEmbd: 64, nVocab: 512, nHead: 8, nHeadKv: 4, nFf: 172, contextLength: 512,
    layerBytes: [70_000, 70_000, 70_000, 70_000], embeddingBytes: 131_072, outputBytes: 131_072, fileBytes: 600_000, kvBytesPerTokenPerLayer: 2 * 4 * 8 * 2
  }
  const card = modelCardFromMetadata(asModelId('stories260k-f32'), meta, 256, true)
  assert.equal(card.kvBytesPerTokenPerLayer, 2 * 4 * 8 * 2)
  const p = plan({ members: [{ peerId: asNodeId('a'), name: 'a', memoryBudgetBytes: 8 << 20, computeMsPerLayer: 0.05 }], rttMs: {} }, card)
  assert.equal(p.kind, 'plan')
})

test('sliding-window layers: the card charges each its bounded KV ring, full layers the whole context', () => {
  const perToken = 2 * 2 * 8 * 256
  const meta: ModelMetadata = {
    architecture: 'gemma3', nLayers: 6, nEmbd: 64, nVocab: 512, nHead: 8, nHeadKv: 8, nFf: 172, contextLength: 131072,
    layerBytes: Array(6).fill(70_000), embeddingBytes: 131_072, outputBytes: 131_072, fileBytes: 600_000, kvBytesPerTokenPerLayer: perToken,
    swaWindow: [1024, 1024, 1024, 1024, 1024, 0]
  }
  const card = modelCardFromMetadata(asModelId('g'), meta, 32768, true)
  // llama.cpp's SWA cache (swa_full = false): pad256(min(32768, 1024 + 512 + 1)) = 1792 cells
  assert.deepEqual(card.kvBytesPerLayer, [...Array(5).fill(1792 * perToken), 32768 * perToken])
  // a context shorter than the ring: every layer holds the context
  assert.deepEqual(modelCardFromMetadata(asModelId('g'), meta, 1000, true).kvBytesPerLayer, Array(6).fill(1000 * perToken))
  // no sliding window: no per-layer list (the uniform kvBytesPerTokenPerLayer × contextSize applies)
  assert.equal(modelCardFromMetadata(asModelId('g'), { ...meta, swaWindow: undefined }, 32768, true).kvBytesPerLayer, undefined)
})
