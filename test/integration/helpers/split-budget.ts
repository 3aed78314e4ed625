import assert from 'node:assert/strict'
import { readModelMetadata } from '../../../src/engine/index.js'
import { modelCardFromMetadata } from '../../../src/node/pipeline/model-card.js'
import { asModelId } from '../../../src/shared/ids.js'

/**
 * A whole-MiB `--memory-budget` per node (the planner's memory model, flash attention on as nodes run
 * by default) that holds ⌈n/k⌉ layers plus embeddings or output and a stage's compute buffers, but not
 * one layer more: k nodes can hold the model, fewer cannot. Returns the budget and the most layers a
 * stage can take under it.
 */
export function budgetForSplitMiB (modelPath: string, id: string, k: number, flashAttention = true): { mib: number, maxLayersPerStage: number } {
  const meta = readModelMetadata(modelPath)
  const card = modelCardFromMetadata(asModelId(id), meta, meta.contextLength, flashAttention)
  // the costliest layer (weights + its KV: sliding-window layers hold fewer cells, card.kvBytesPerLayer)
  const layerCost = (i: number): number => card.layerBytes[i]! + (card.kvBytesPerLayer?.[i] ?? card.kvBytesPerTokenPerLayer * card.contextSize) + (card.layerOverheadBytes ?? 0)
  const layer = Math.max(...card.layerBytes.map((_, i) => layerCost(i)))
  const fixed = Math.max(card.embeddingBytes, card.outputBytes) + (card.stageOverheadBytes ?? 0)
  const perStage = Math.ceil(card.nLayers / k)
  const mib = Math.ceil((fixed + perStage * layer) / 2 ** 20)
  const maxLayersPerStage = Math.floor((mib * 2 ** 20 - fixed) / layer)
  const whole = card.embeddingBytes + card.outputBytes + (card.stageOverheadBytes ?? 0) + card.layerBytes.reduce((a, _, i) => a + layerCost(i), 0)
  assert.ok(whole > mib * 2 ** 20, `a budget of ${mib} MiB holds all of ${id}: no split would be forced`)
  return { mib, maxLayersPerStage }
}
