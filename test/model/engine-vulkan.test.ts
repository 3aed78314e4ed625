/**
 * Our engine on ggml-vulkan vs node-llama-cpp's Vulkan build on the same device (Mesa lavapipe on CI): logits of
 * a 53-token prompt (≥ 32 tokens: the scheduler's op offload of CPU-held weights runs as in llama.cpp) and 4
 * greedy decode steps, with all layers offloaded, half offloaded, and split in 2 shards (both offloaded; first
 * on the CPU side of a GPU build, second offloaded; a CPU-only node's shard feeding an offloaded one).
 *
 * Whole model: bit-identical (same kernels, same graph, same buffer types, same scheduler assignments).
 * Split: ggml-vulkan fuses a layer's residual ADD with the next layer's RMS_NORM (the add shader accumulates
 * partial sums of squares, in another order than rms_norm alone); a shard boundary between those two layers
 * breaks the fusion, so a boundary norm can round differently: measured ≤ 4e-6 on logits of magnitude ~20
 * (relative 2e-7); with GGML_VK_DISABLE_FUSION=1 in both engines the split cases are exact too (measured by
 * hand, not run here: the variable is read once per process). Tolerance for split cases: 1e-4.
 *
 * A CPU-only node (plain CPU / CPU_REPACK buffers, no scheduler) feeding a GPU node has no llama.cpp twin: in
 * llama.cpp's partly offloaded run, the CPU layers' matmuls over ≥ 32 tokens are offloaded to the GPU (op
 * offload), whose kernels round differently from the CPU's (ggml-vulkan converts activations to f16 for its
 * matmuls); measured 1.2e-2 on logits of magnitude ~20. Tolerance 5e-2.
 *
 * Skips when no Vulkan device is found, unless EXO_P2P_REQUIRE_VULKAN=1 (CI), where that is a failure.
 * GGML_VK_VISIBLE_DEVICES defaults to 0 here: ggml-vulkan ignores CPU-type devices (lavapipe) without it.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it, before } from 'node:test'
import { LlamaLogLevel, getLlama } from 'node-llama-cpp'
import { readModelMetadata, selectComputeBackend } from '../../src/engine/index.js'
import { liveBufferBytes } from '../../src/engine/native/ggml.js'
import { generatedModel } from './helpers/generated-models.js'
import { Pipeline, compareWithReference, referenceLogits } from './helpers/reference.js'
import type { Llama } from 'node-llama-cpp'
import type { ShardOptions } from '../../src/engine/index.js'

process.env.GGML_VK_VISIBLE_DEVICES ??= '0'
const PROMPT = 'Once upon a time, there was a little dog named Max. He liked to run in the park with his friends. One day, he found a big red ball under a tree and'
const STEPS = 4

function vulkanSkip (): string | false {
  try {
    const be = selectComputeBackend('vulkan')
    console.log(`# Vulkan device: ${be.device!.name} (${be.device!.description}), ${be.device!.totalBytes} bytes`)
    return false
  } catch (err) {
    if (process.env.EXO_P2P_REQUIRE_VULKAN === '1') throw err
    return `no Vulkan device: ${(err as Error).message}`
  }
}
const skip = vulkanSkip()

type Case = [label: string, refGpuLayers: (n: number) => number, shards: (path: string, n: number) => Array<Omit<ShardOptions, 'threads'>>, tolerance: number]
const SPLIT_TOLERANCE = 1e-4
const MIXED_TOLERANCE = 5e-2
const half = (n: number): number => Math.floor(n / 2)
const CASES: Case[] = [
  // llama.cpp n_gpu_layers = n + 1: every layer and the output
  ['all offloaded', (n) => n + 1, (p, n) => [{ modelPath: p, range: { start: 0, end: n }, gpuLayers: n }], 0],
  // n_gpu_layers = k ≤ n: the output and the last k - 1 layers
  ['half offloaded', (n) => n - half(n) + 1, (p, n) => [{ modelPath: p, range: { start: 0, end: n }, gpuLayers: n - half(n) }], 0],
  ['2 shards, all offloaded', (n) => n + 1, (p, n) => [
    { modelPath: p, range: { start: 0, end: half(n) }, gpuLayers: half(n) },
    { modelPath: p, range: { start: half(n), end: n }, gpuLayers: n - half(n) }], SPLIT_TOLERANCE],
  // the second shard offloads all it runs, but the model is not fully offloaded (llama.cpp's full_offload = false)
  ['2 shards, first on the CPU of a GPU build', (n) => n - half(n) + 1, (p, n) => [
    { modelPath: p, range: { start: 0, end: half(n) }, gpuLayers: 0 },
    { modelPath: p, range: { start: half(n), end: n }, gpuLayers: n - half(n), gpuFullOffload: false }], SPLIT_TOLERANCE],
  // a CPU-only node (CPU_REPACK / plain CPU buffers, no scheduler) in front of a GPU node
  ['2 shards, CPU-only node then GPU node', (n) => n - half(n) + 1, (p, n) => [
    { modelPath: p, range: { start: 0, end: half(n) } },
    { modelPath: p, range: { start: half(n), end: n }, gpuLayers: n - half(n), gpuFullOffload: false }], MIXED_TOLERANCE]
]

describe('engine on Vulkan == node-llama-cpp Vulkan build', { skip }, () => {
  let llama: Llama
  before(async () => { llama = await getLlama({ gpu: 'vulkan', build: 'never', logLevel: LlamaLogLevel.error }) })

  const models: Array<[string, () => string]> = [
    ['stories260k f32', () => 'models/stories260k-f32.gguf'],
    ['generated GQA q8_0 (8 heads, 2 KV heads)', () => generatedModel('q8_0', { layers: 4, embd: 256, heads: 8, kvHeads: 2, ff: 512 })]
  ]
  for (const [name, path] of models) {
    it(name, async () => {
      const modelPath = path()
      const n = readModelMetadata(modelPath).nLayers
      const refs = new Map<number, Awaited<ReturnType<typeof referenceLogits>>>()
      for (const [label, refGpu, shards, tolerance] of CASES) {
        const ngl = refGpu(n)
        if (!refs.has(ngl)) refs.set(ngl, await referenceLogits(modelPath, PROMPT, STEPS, false, 512, { llama, gpuLayers: ngl }))
        const p = await Pipeline.loadOptions(shards(modelPath, n).map((o) => ({ ...o, flashAttention: false })))
        const device = selectComputeBackend('vulkan').device!.name
        assert.ok((liveBufferBytes().get(device) ?? 0) > 0, 'weights and KV cache of the offloaded layers are in device buffers')
        try {
          const diff = await compareWithReference(p, refs.get(ngl)!)
          console.log(`# ${name} ${label} (llama.cpp n_gpu_layers ${ngl}): max |diff| = ${diff} over ${STEPS + 1} steps`)
          assert.ok(diff <= tolerance, `${label}: logits differ from node-llama-cpp's Vulkan build by up to ${diff} (tolerance ${tolerance})`)
        } finally {
          await p.dispose()
        }
        assert.equal(liveBufferBytes().get(device) ?? 0, 0, 'dispose freed every device buffer')
      }
    })
  }

  it('flash attention, all offloaded (stories260k)', async () => {
    const modelPath = 'models/stories260k-f32.gguf'
    const n = readModelMetadata(modelPath).nLayers
    const ref = await referenceLogits(modelPath, PROMPT, STEPS, true, 512, { llama, gpuLayers: n + 1 })
    const p = await Pipeline.loadOptions([{ modelPath, range: { start: 0, end: n }, gpuLayers: n, flashAttention: true }])
    try {
      const diff = await compareWithReference(p, ref)
      console.log(`# stories260k flash attention all offloaded: max |diff| = ${diff}`)
      assert.equal(diff, 0)
    } finally {
      await p.dispose()
    }
  })


  // a decode graph computed on small compute buffers, then a 300-token prefill that needs larger ones: before the
  // buffers were reserved up front (compute-reserve.ts) this aborted Node (glibc heap corruption) on lavapipe in 3 of 3
  // runs of the child alone (heap-layout dependent: in this process it did not); the child runs on its own for that
  it('a 300-token prefill after a disposed session decoded (compute buffers reserved up front)', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/model/helpers/vk-regrow-child.ts'], { encoding: 'utf8', timeout: 60_000 })
    assert.equal(r.status, 0, `child exited ${r.status} (signal ${r.signal}): ${r.stderr.slice(-500)}`)
    assert.match(r.stdout, /argmax \d+/)
  })
})
