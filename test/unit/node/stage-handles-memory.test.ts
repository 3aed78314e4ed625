import assert from 'node:assert/strict'
import { test } from 'node:test'
import { StageHandles } from '../../../src/node/pipeline/stage-handles.js'
import type { LoadedShard, ModelMetadata } from '../../../src/engine/types.js'
import type { Plan } from '../../../src/planner/index.js'
import type { ShardEngine } from '../../../src/node/shard-engine.js'
import { asModelId, asNodeId, asPlanId } from '../../../src/shared/ids.js'

/** StageHandles against a fake engine: which ranges it loads at once under a memory budget. */
const meta = { architecture: 'llama', nLayers: 6, nEmbd: 4, nVocab: 8, nHead: 1, nHeadKv: 1, nFf: 4, contextLength: 64, layerBytes: [], embeddingBytes: 0, outputBytes: 0, fileBytes: 0, kvBytesPerTokenPerLayer: 0 } as unknown as ModelMetadata

function fakeEngine (loaded: string[], disposed: string[]): ShardEngine {
  return {
    readMetadata: () => meta,
    loadShard: async ({ range }) => {
      loaded.push(`${range.start}:${range.end}`)
      return { metadata: meta, range, isFirst: range.start === 0, isLast: range.end === 6, weightBytes: 0, createSession: () => { throw new Error('unused') }, dispose: async () => { disposed.push(`${range.start}:${range.end}`) } } as unknown as LoadedShard
    }
  }
}

/** A 2-stage plan where this node ('me') runs [start, end) needing `bytes`. */
function plan (id: string, start: number, end: number, bytes: number): Plan {
  const other = start === 0 ? { peerId: asNodeId('peer'), name: 'peer', start: end, end: 6, computeMs: 1, memoryBytes: 1 } : { peerId: asNodeId('peer'), name: 'peer', start: 0, end: start, computeMs: 1, memoryBytes: 1 }
  const mine = { peerId: asNodeId('me'), name: 'me', start, end, computeMs: 1, memoryBytes: bytes }
  return { kind: 'plan', id: asPlanId(id.padEnd(64, '0')), modelId: asModelId('m'), nLayers: 6, stages: start === 0 ? [mine, other] : [other, mine], predictedMsPerToken: 2, ringRttMs: 1 }
}

function handles (budget: number | undefined, loaded: string[], disposed: string[]): StageHandles {
  return new StageHandles({
    model: { id: asModelId('m'), path: '/nonexistent.gguf', metadata: meta },
    engine: fakeEngine(loaded, disposed),
    threads: 1,
    flashAttention: true,
    selfId: 'me',
    dialNext: async () => { throw new Error('unused') },
    onChange: () => {},
    ...(budget !== undefined ? { memoryBudgetBytes: budget } : {})
  })
}

test('a new range that does not fit next to the held one waits until the old range is released', async () => {
  const loaded: string[] = []
  const disposed: string[] = []
  const h = handles(100, loaded, disposed)
  const oldPlan = plan('a', 0, 3, 60)
  const newPlan = plan('b', 0, 4, 70)
  const old = h.ensure(oldPlan, 0)!
  assert.ok(old !== undefined)
  assert.equal(h.loadedBytes, 60)
  assert.equal(h.blockedByMemory(newPlan), true, '60 + 70 > 100')
  assert.equal(h.ensure(newPlan, 0), undefined)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(loaded, ['0:3'])
  h.release(old)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(disposed, ['0:3'])
  assert.equal(h.blockedByMemory(newPlan), false)
  assert.ok(h.ensure(newPlan, 0) !== undefined)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(loaded, ['0:3', '0:4'])
  assert.equal(h.loadedBytes, 70)
})

test('ranges that fit together load side by side (make before break); a shared range is never blocked', async () => {
  const loaded: string[] = []
  const h = handles(200, loaded, [])
  h.ensure(plan('a', 0, 3, 60), 0)
  assert.equal(h.blockedByMemory(plan('b', 0, 4, 70)), false)
  h.ensure(plan('b', 0, 4, 70), 0)
  assert.equal(h.loadedBytes, 130)
  // a third plan that keeps a range already held costs nothing more
  assert.equal(h.blockedByMemory(plan('c', 0, 4, 150)), false)
  // without a budget nothing is ever blocked
  assert.equal(handles(undefined, [], []).blockedByMemory(plan('d', 0, 6, 1e12)), false)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(loaded, ['0:3', '0:4'])
})

test('offloaded layers count against the device budget (make before break never overcommits the GPU)', async () => {
  const h = new StageHandles({
    model: { id: asModelId('m'), path: '/nonexistent.gguf', metadata: meta },
    engine: fakeEngine([], []),
    threads: 1,
    flashAttention: true,
    selfId: 'me',
    dialNext: async () => { throw new Error('unused') },
    onChange: () => {},
    memoryBudgetBytes: 1000,
    gpu: { layers: 'auto', budgetBytes: 100 }
  })
  const gpuPlan = (id: string, gpuLayers: number, deviceBytes: number): Plan => {
    const p = plan(id, 0, 3, 10)
    p.stages[0] = { ...p.stages[0]!, gpuLayers, deviceBytes }
    return p
  }
  h.ensure(gpuPlan('a', 2, 60), 0)
  assert.equal(h.loadedDeviceBytes, 60)
  assert.equal(h.blockedByMemory(gpuPlan('b', 3, 70)), true, 'device: 60 + 70 > 100 (the host has room)')
  assert.equal(h.ensure(gpuPlan('b', 3, 70), 0), undefined)
  assert.equal(h.blockedByMemory(gpuPlan('c', 2, 60)), false, 'same range, same offload: shared')
  assert.equal(h.blockedByMemory(gpuPlan('d', 1, 30)), false, '60 + 30 ≤ 100')
  await new Promise((resolve) => setImmediate(resolve))
})
