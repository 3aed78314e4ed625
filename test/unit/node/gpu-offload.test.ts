import assert from 'node:assert/strict'
import { test } from 'node:test'
import { announcedDevices, deviceReserveBytes, gpuOffloadFor, nodeGpuLayers, shardGpuOptions } from '../../../src/node/gpu-offload.js'
import { kvBytesPerLayer, layerComputeBytes, stageComputeBytes } from '../../../src/node/pipeline/model-card.js'
import type { ModelMetadata } from '../../../src/engine/types.js'

const meta: ModelMetadata = {
  architecture: 'llama', nLayers: 8, nEmbd: 64, nVocab: 512, nHead: 8, nHeadKv: 4, nFf: 172, contextLength: 512,
  layerBytes: [1, 2, 3, 4, 5, 6, 7, 8].map((i) => i * 100_000), embeddingBytes: 131_072, outputBytes: 250_000, fileBytes: 4_000_000, kvBytesPerTokenPerLayer: 256
}
const ctx = 512
const perLayer = (il: number): number => meta.layerBytes[il]! + kvBytesPerLayer(meta, ctx)[il]! + layerComputeBytes(meta, ctx)
const fixed = (last: boolean): number => stageComputeBytes(meta, ctx, true) + (last ? meta.outputBytes : 0)

test('--gpu-layers auto fills the budget from the last layer down, the output and stage buffer first', () => {
  const all = [{ start: 0, end: 8 }]
  // exactly the output + stage buffer + layers 7 and 6
  const exact = fixed(true) + perLayer(7) + perLayer(6)
  assert.equal(nodeGpuLayers({ layers: 'auto', budgetBytes: exact }, meta, all, ctx, true), 2)
  assert.equal(nodeGpuLayers({ layers: 'auto', budgetBytes: exact - 1 }, meta, all, ctx, true), 1)
  assert.equal(nodeGpuLayers({ layers: 'auto', budgetBytes: fixed(true) - 1 }, meta, all, ctx, true), 0)
  assert.equal(nodeGpuLayers({ layers: 'auto', budgetBytes: 1e12 }, meta, all, ctx, true), 8)
  // a middle stage holds no output
  const mid = [{ start: 2, end: 5 }]
  assert.equal(nodeGpuLayers({ layers: 'auto', budgetBytes: fixed(false) + perLayer(4) + perLayer(3) }, meta, mid, ctx, true), 2)
  assert.equal(nodeGpuLayers(undefined, meta, all, ctx, true), 0)
})

test('--gpu-layers N is capped by the node\'s layers; shards get their part of the node\'s last layers', () => {
  const ranges = [{ start: 0, end: 3 }, { start: 3, end: 6 }, { start: 6, end: 8 }]
  assert.equal(nodeGpuLayers({ layers: 99, budgetBytes: 0 }, meta, ranges, ctx, true), 8)
  assert.equal(nodeGpuLayers({ layers: 4, budgetBytes: 0 }, meta, ranges, ctx, true), 4)
  const offload = { layers: 4, budgetBytes: 0 }
  assert.deepEqual(ranges.map((r) => shardGpuOptions(offload, r, ranges, 4)), [{ gpuLayers: 0 }, { gpuLayers: 2 }, { gpuLayers: 2 }])
  assert.deepEqual(shardGpuOptions(undefined, ranges[0]!, ranges, 4), {})
})

test('the offload budget keeps a reserve; devices are announced with budget and speed on the used one only', () => {
  assert.equal(deviceReserveBytes(2 ** 30), 128 * 2 ** 20)
  assert.equal(deviceReserveBytes(80 * 2 ** 30), 2 ** 30)
  const dev = (index: number): { index: number, name: string, description: string, totalBytes: number, freeBytes: number } => ({ index, name: `Vulkan${index}`, description: `GPU ${index}`, totalBytes: 8 * 2 ** 30, freeBytes: 6 * 2 ** 30 })
  const backend = { backend: 'vulkan' as const, device: dev(1), devices: [dev(0), dev(1)] }
  const offload = gpuOffloadFor(backend, 'auto')
  assert.deepEqual(offload, { layers: 'auto', budgetBytes: 6 * 2 ** 30 - deviceReserveBytes(8 * 2 ** 30) })
  assert.equal(gpuOffloadFor({ backend: 'cpu', device: undefined, devices: [] }, 'auto'), undefined)
  const ann = announcedDevices(backend, offload, 0.25, 3)
  assert.deepEqual(ann.map((d) => [d.name, d.budgetBytes > 0, d.computeMsPerLayer, d.maxLayers]), [['GPU 0', false, 0, undefined], ['GPU 1', true, 0.25, 3]])
  assert.deepEqual(announcedDevices({ backend: 'cpu', device: undefined, devices: [] }, undefined, 0, 'auto'), [])
})
