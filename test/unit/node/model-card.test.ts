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
