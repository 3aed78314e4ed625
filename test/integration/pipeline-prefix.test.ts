/**
 * Prefix reuse over a 2-stage pipeline of real `exo-p2p start` processes (stories260k split by memory budgets,
 * flash attention off): turn 2 of a conversation, sent to either node, reuses the KV both stages retained from
 * turn 1 and returns the greedy text of a cold run of the same prompt (the engine in this process); /metrics
 * counts the hit, the reused tokens and the admission limits.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterState, metrics, REPO_ROOT, startMeshNode, stopProcess, waitFor } from './helpers/mesh-node-process.js'
import { budgetForSplitMiB } from './helpers/split-budget.js'
import type { MeshNodeProcess } from './helpers/mesh-node-process.js'
import { LocalInferenceService } from '../../src/node/local-inference-service.js'
import { ggmlShardEngine } from '../../src/node/ggml-shard-engine.js'
import { asModelId, asRequestId } from '../../src/shared/ids.js'

const MODEL = 'stories260k-f32'
const STORY = 'Once upon a time there was a little girl named Lily. She liked to play in the park with her dog. One day the sun was hot and the sky was blue. '
let nodes: MeshNodeProcess[] = []
const dirs: string[] = []
const cold = new LocalInferenceService({ engine: ggmlShardEngine, threads: 1, flashAttention: false, prefixCacheBytes: 0 })

async function complete (node: MeshNodeProcess, prompt: string): Promise<string> {
  const res = await fetch(`${node.httpUrl}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(30_000),
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: 24, temperature: 0 })
  })
  const body = await res.json() as { choices?: Array<{ text: string }> }
  assert.equal(res.status, 200, `${node.name}: ${JSON.stringify(body)}`)
  return body.choices![0]!.text
}

async function coldText (prompt: string): Promise<string> {
  let text = ''
  for await (const e of cold.generate({ id: asRequestId('cold'), model: asModelId(MODEL), prompt: { kind: 'text', text: prompt }, maxTokens: 24, sampling: { temperature: 0 }, stop: [] }, { signal: AbortSignal.timeout(30_000) })) if (e.type === 'token') text += e.text
  return text
}

before(async () => {
  const { mib } = budgetForSplitMiB(join(REPO_ROOT, 'models', `${MODEL}.gguf`), MODEL, 2, false)
  const start = async (name: string, peers: string[]): Promise<MeshNodeProcess> => {
    const dataDir = mkdtempSync(join(tmpdir(), `exo-prefix-${name}-`))
    dirs.push(dataDir)
    return await startMeshNode({ name, dataDir, peers, extraArgs: ['--memory-budget', String(mib), '--no-flash-attention', '--log-level', 'warn'] })
  }
  const a = await start('prefix-a', [])
  nodes = [a, await start('prefix-b', [a.p2pAddr])]
  await waitFor('a ready 2-stage plan agreed by both nodes', async () => {
    const states = await Promise.all(nodes.map(clusterState))
    const ids = new Set(states.map((s) => s.plan?.ready === true && s.plan.stages.length === 2 ? s.plan.id : undefined))
    return ids.size === 1 && !ids.has(undefined) ? true : undefined
  }, 60_000, 100)
})

after(async () => {
  await Promise.all(nodes.map(async (n) => { await stopProcess(n) }))
  await cold.dispose()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('prefix reuse across two processes', () => {
  it('turn 2 reuses both stages\' retained KV and returns a cold run\'s greedy text, on either node', async () => {
    const sum = async (name: string): Promise<number> => (await Promise.all(nodes.map(async (n) => (await metrics(n)).get(name) ?? 0))).reduce((x, y) => x + y, 0)
    for (const [i, node] of nodes.entries()) {
      const first = `${STORY}Story ${i}.`
      const t1 = await complete(node, first)
      assert.equal(t1, await coldText(first))
      const hits = await sum('exo_p2p_prefix_cache_hits_total')
      const reused = await sum('exo_p2p_prefix_cache_reused_tokens_total')
      const turn2 = `${first}${t1} Then they went home.`
      assert.equal(await complete(node, turn2), await coldText(turn2), `turn 2 through ${node.name}`)
      // the first stage and the second each count the hit
      assert.equal(await sum('exo_p2p_prefix_cache_hits_total') - hits, 2)
      assert.ok(await sum('exo_p2p_prefix_cache_reused_tokens_total') - reused > 2 * 40)
    }
    const m = await metrics(nodes[0]!)
    assert.ok((m.get('exo_p2p_prefix_cache_entries') ?? 0) >= 1)
    assert.ok((await (await fetch(`${nodes[0]!.httpUrl}/metrics`)).text()).includes('exo_p2p_admission_max_sequences{scope="pipeline"}'))
  })
})
