import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { selectComputeBackend } from '../../src/engine/index.js'
import type { ClusterStateJson } from '../../src/shared/cluster-state.js'
import { clusterState, REPO_ROOT, startMeshNode, stopProcess, waitFor } from './helpers/mesh-node-process.js'
import { budgetForSplitMiB } from './helpers/split-budget.js'
import type { MeshNodeProcess } from './helpers/mesh-node-process.js'

/**
 * A 2-node mesh of real processes on 127.0.0.1: one node `--gpu vulkan` (Mesa lavapipe on CI, through
 * GGML_VK_VISIBLE_DEVICES=0) offering at most one layer of its stage to the device (`--gpu-layers 1`) next to a
 * host budget of 2 of stories260k's 5 layers, one `--gpu cpu` with a budget of 3: neither holds the model, so
 * they split it. Once the Vulkan node has measured its device they agree on a plan in which its stage runs a
 * layer on the GPU, and both HTTP ports return llama.cpp's greedy text
 * (the stages differ by kernel rounding only, README "GPUs": the greedy tokens of this prompt agree).
 * Skips without a Vulkan device, unless EXO_P2P_REQUIRE_VULKAN=1.
 */
const MODEL = 'stories260k-f32'
/** node-llama-cpp 3.22.1 LlamaCompletion, greedy, 30 tokens (test/fixtures/models/README.md) */
const REFERENCE = ', there was a little girl named Lily. She loved to play outside in the park. One day,'
const VK_ENV = { GGML_VK_VISIBLE_DEVICES: process.env.GGML_VK_VISIBLE_DEVICES ?? '0' }

function vulkanSkip (): string | false {
  // the same probe the Vulkan node makes (this process only checks; it computes nothing)
  process.env.GGML_VK_VISIBLE_DEVICES ??= '0'
  try {
    selectComputeBackend('vulkan')
    return false
  } catch (err) {
    if (process.env.EXO_P2P_REQUIRE_VULKAN === '1') throw err
    return `no Vulkan device: ${(err as Error).message}`
  }
}
const skip = vulkanSkip()

let nodes: MeshNodeProcess[] = []
const dirs: string[] = []

function agreedPlan (states: ClusterStateJson[]): NonNullable<ClusterStateJson['plan']> | undefined {
  const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : undefined))
  if (ids.size !== 1 || ids.has(undefined)) return undefined
  return states[0]!.plan ?? undefined
}

async function complete (node: MeshNodeProcess): Promise<string> {
  const res = await fetch(`${node.httpUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: 30, temperature: 0 }),
    // the Vulkan node's first request may compile shader pipelines on a loaded CPU (lavapipe)
    signal: AbortSignal.timeout(150_000)
  })
  const body = await res.json() as { choices?: Array<{ text: string }> }
  assert.equal(res.status, 200, `${node.name}: ${JSON.stringify(body)}`)
  return body.choices![0]!.text
}

describe('a mesh of a Vulkan node and a CPU node', { skip }, () => {
  before(async () => {
    const budget = (k: number): string => String(budgetForSplitMiB(join(REPO_ROOT, 'models', `${MODEL}.gguf`), MODEL, k).mib)
    const start = async (name: string, peers: string[], args: string[], env?: Record<string, string>): Promise<MeshNodeProcess> => {
      const dataDir = mkdtempSync(join(tmpdir(), `exo-gpu-${name}-`))
      dirs.push(dataDir)
      return await startMeshNode({ name, dataDir, peers, extraArgs: args, ...(env !== undefined ? { env } : {}) }, 90_000)
    }
    const cpu = await start('cpu-node', [], ['--gpu', 'cpu', '--memory-budget', budget(2)])
    const gpu = await start('vk-node', [cpu.p2pAddr], ['--gpu', 'vulkan', '--gpu-layers', '1', '--memory-budget', budget(3)], VK_ENV)
    nodes = [cpu, gpu]
    assert.match(gpu.stdout, /compute: {3}vulkan Vulkan\d/)
    // the first plans may come before the device probe (no device known yet): wait for one that offloads
    await waitFor('a ready plan, agreed by both nodes, that offloads a layer to the Vulkan device', async () => {
      const plan = agreedPlan(await Promise.all(nodes.map(clusterState)))
      return plan?.stages.some((s) => (s.gpuLayers ?? 0) > 0) === true ? plan : undefined
    }, 180_000, 200)
  })

  after(async () => {
    await Promise.all(nodes.map(async (n) => { await stopProcess(n) }))
    if (process.env.EXO_TEST_DUMP_LOGS !== undefined) for (const n of nodes) process.stderr.write(`\n===== ${n.name}\n${n.stderr}`)
    nodes = []
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  it('plan: two stages, the Vulkan node runs one of its layers on the device; it announces the device', async () => {
    const states = await Promise.all(nodes.map(clusterState))
    const plan = agreedPlan(states)!
    assert.equal(plan.stages.length, 2, JSON.stringify(plan.stages))
    const vk = plan.stages.find((s) => s.peerId === nodes[1]!.peerId)!
    assert.equal(vk.gpuLayers, 1, JSON.stringify(plan.stages))
    assert.equal(plan.stages.find((s) => s.peerId === nodes[0]!.peerId)!.gpuLayers ?? 0, 0)
    const member = states[0]!.members.find((m) => m.peerId === nodes[1]!.peerId)!
    assert.equal(member.devices?.[0]?.backend, 'vulkan')
    assert.ok((member.devices?.[0]?.computeMsPerLayer ?? 0) > 0, 'the device probe measured ms per layer')
    assert.deepEqual(states[1]!.members.find((m) => m.peerId === nodes[0]!.peerId)!.devices ?? [], [])
    process.stderr.write(`# plan ${plan.stages.map((s) => `${s.name}[${s.start},${s.end}) gpu ${s.gpuLayers ?? 0}`).join(' → ')}; device ${member.devices![0]!.name} ${member.devices![0]!.computeMsPerLayer} ms/layer\n`)
  })

  it('both nodes return llama.cpp\'s greedy text', async () => {
    for (const n of nodes) assert.equal(await complete(n), REFERENCE, `text from ${n.name}`)
  })
})
