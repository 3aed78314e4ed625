import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { modelIdOfPath } from '../../src/node/model-registry.js'
import { referenceGreedy } from '../model/helpers/completion-reference.js'
import { generatedModel } from '../model/helpers/generated-models.js'
import { clusterState, startMeshNode, stopProcess, waitFor } from './helpers/mesh-node-process.js'
import { budgetForSplitMiB } from './helpers/split-budget.js'
import type { ClusterStateJson } from '../../src/shared/cluster-state.js'
import type { MeshNodeProcess } from './helpers/mesh-node-process.js'

/**
 * A generated gemma3 (8 layers, 8-token sliding window on layers 0-4 and 6, global 5 and 7) split over three
 * `exo-p2p start` processes by their memory budgets (the planner's per-layer KV bytes): every node's HTTP
 * port returns node-llama-cpp's greedy text, so sliding-window layers agree across stage boundaries.
 */
const PROMPT = 'The quick brown fox jumps over the lazy dog because'

describe('pipeline of a generated gemma3 across three processes', () => {
  const dirs: string[] = []
  let trio: MeshNodeProcess[] = []
  let path = ''

  before(async () => {
    path = generatedModel('q8_0', { arch: 'gemma3', layers: 8, archOptions: { swa: 8 } })
    const budget = String(budgetForSplitMiB(path, modelIdOfPath(path), 3).mib)
    const start = async (name: string, peers: string[]): Promise<MeshNodeProcess> => {
      const dataDir = mkdtempSync(join(tmpdir(), `exo-gemma3-${name}-`))
      dirs.push(dataDir)
      return await startMeshNode({ name, dataDir, peers, extraArgs: ['--model', path, '--memory-budget', budget, '--log-level', 'info'] })
    }
    const a = await start('g3-a', [])
    trio = [a, ...await Promise.all([start('g3-b', [a.p2pAddr]), start('g3-c', [a.p2pAddr])])]
  })

  after(async () => {
    await Promise.all(trio.map(async (n) => { await stopProcess(n) }))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  it('splits into ≥ 2 stages and every node returns llama.cpp\'s greedy text', async () => {
    const agreed = (states: ClusterStateJson[]): NonNullable<ClusterStateJson['plan']> | undefined => {
      const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : undefined))
      return ids.size === 1 && !ids.has(undefined) ? states[0]!.plan ?? undefined : undefined
    }
    const plan = await waitFor('an agreed plan', async () => agreed(await Promise.all(trio.map(clusterState))), 60_000, 100)
    assert.ok(plan.stages.length >= 2)
    process.stderr.write(`# gemma3: plan ${plan.stages.map((s) => `${s.name}[${s.start},${s.end})`).join(' → ')}\n`)
    const reference = (await referenceGreedy(path, PROMPT, 30)).text
    assert.ok(reference.length > 0)
    for (const n of trio) {
      const res = await fetch(`${n.httpUrl}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: modelIdOfPath(path), prompt: PROMPT, max_tokens: 30, temperature: 0 }),
        signal: AbortSignal.timeout(30_000)
      })
      const body = await res.json() as { choices?: Array<{ text: string }> }
      assert.equal(res.status, 200, `${n.name}: ${JSON.stringify(body)}`)
      assert.equal(body.choices![0]!.text, reference, `text from ${n.name}`)
    }
  })
})
