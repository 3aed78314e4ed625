import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import type { ClusterStateJson } from '../../src/shared/cluster-state.js'
import { shardFileRanges } from '../../src/engine/index.js'
import { modelIdOfPath } from '../../src/node/model-registry.js'
import { clusterState, startMeshNode, stopProcess, waitFor } from './helpers/mesh-node-process.js'
import type { MeshNodeProcess, StartOptions } from './helpers/mesh-node-process.js'
import { budgetForSplitMiB } from './helpers/split-budget.js'
import { generatedModel } from '../model/helpers/generated-models.js'
import { referenceGreedy } from '../model/helpers/completion-reference.js'

/**
 * Peer fetch with real node processes on 127.0.0.1 (protocols/weights.md): nodes started with
 * `--model ID` of a model only their peers hold fetch the header and exactly their stage's chunks,
 * and the pipeline's greedy text equals llama.cpp's — with a tampering holder and a holder killed mid-fetch.
 */
// 6 layers of ~2.2 MB (Q8_0), embeddings and output ~21 MB each: 4 MiB chunks, a stage spans chunks of its own
const MODEL_PATH = generatedModel('q8_0', { layers: 6, embd: 512, heads: 8, kvHeads: 8, ff: 1408, seed: 31 })
const MODEL = modelIdOfPath(MODEL_PATH)
const FILE_BYTES = statSync(MODEL_PATH).size
const CHUNK = 4 << 20
const PROMPT = 'Once upon a time'

const running: MeshNodeProcess[] = []
const dirs: string[] = []

async function start (name: string, model: string, budgetMiB: number, peers: string[], more: Partial<StartOptions> = {}): Promise<{ node: MeshNodeProcess, dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), `exo-fetch-${name}-`))
  dirs.push(dataDir)
  const node = await startMeshNode({ name, dataDir, peers, ...more, extraArgs: ['--model', model, '--memory-budget', String(budgetMiB), '--log-level', 'info', ...(more.extraArgs ?? [])] })
  running.push(node)
  return { node, dataDir }
}

after(async () => {
  await Promise.all(running.map(async (n) => { await stopProcess(n) }))
  if (process.env.EXO_TEST_DUMP_LOGS !== undefined) for (const n of running) process.stderr.write(`\n===== ${n.name}\n${n.stderr}`)
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function agreedReadyPlan (states: ClusterStateJson[], stages: number): NonNullable<ClusterStateJson['plan']> | undefined {
  const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : undefined))
  if (ids.size !== 1 || ids.has(undefined)) return undefined
  const p = states[0]!.plan!
  return p.stages.length === stages ? p : undefined
}

async function complete (node: MeshNodeProcess, maxTokens: number): Promise<string> {
  const res = await fetch(`${node.httpUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: PROMPT, max_tokens: maxTokens, temperature: 0 }),
    signal: AbortSignal.timeout(30_000)
  })
  const body = await res.json() as { choices?: Array<{ text: string }> }
  assert.equal(res.status, 200, `${node.name}: ${JSON.stringify(body)}`)
  return body.choices![0]!.text
}

/** st_blocks × 512: bytes the sparse copy really takes on disk */
function allocatedBytes (path: string): number {
  const [blocks, size] = execFileSync('stat', ['-c', '%b %B', path]).toString().trim().split(' ').map(Number)
  return blocks! * size!
}

/** Chunks the stage [start, end) needs, header included (what the fetcher fetches). */
function neededChunks (start: number, end: number, headerBytes: number): number {
  const set = new Set<number>()
  for (let c = 0; c * CHUNK < headerBytes; c++) set.add(c)
  for (const r of shardFileRanges(MODEL_PATH, { start, end })) for (let c = Math.floor(r.offset / CHUNK); c <= Math.floor((r.offset + r.bytes - 1) / CHUNK); c++) set.add(c)
  return set.size
}

describe('peer fetch when holders fail', () => {
  it('a holder that serves tampered bytes is dropped, the fetch completes from the honest holder, and the tamperer keeps serving its stage', async () => {
    await Promise.all(running.splice(0).map(async (n) => { await stopProcess(n) }))
    const budget = budgetForSplitMiB(MODEL_PATH, MODEL, 3).mib
    const reference = referenceGreedy(MODEL_PATH, PROMPT, 16)
    const honest = await start('honest', MODEL_PATH, budget, [])
    const tamper = await start('tamper', MODEL_PATH, budget, [honest.node.p2pAddr], { env: { EXO_P2P_TEST_TAMPER_WEIGHTS: '1' } })
    // the fetcher joins once both holders are known, so it asks both
    await waitFor('holders see each other', async () => (await clusterState(honest.node)).members.length === 2 ? true : undefined, 20_000)
    const f = await start('fetcher', MODEL, budget, [honest.node.p2pAddr, tamper.node.p2pAddr])
    const trio = [honest.node, tamper.node, f.node]
    await waitFor('a ready 3-stage plan agreed by all', async () => agreedReadyPlan(await Promise.all(trio.map(clusterState)), 3), 50_000, 200)
    assert.match(f.node.stderr, /weights holder dropped for this fetch/)
    assert.ok(f.node.stderr.includes(tamper.node.peerId), 'the dropped holder is the tampering one')
    const expected = (await reference).text.replace(/^ /, '')
    for (const n of trio) assert.equal((await complete(n, 16)).replace(/^ /, ''), expected, `text from ${n.name}`)
  })

  it('the holder killed mid-fetch: the fetch completes from the second holder', async () => {
    await Promise.all(running.splice(0).map(async (n) => { await stopProcess(n) }))
    // the holders cannot run the model without a third node; the fetcher can alone, so the plan is the
    // fetcher alone (a single node is fastest) and it fetches the whole file
    const budget = budgetForSplitMiB(MODEL_PATH, MODEL, 3).mib
    const reference = referenceGreedy(MODEL_PATH, PROMPT, 16)
    const h1 = await start('h1', MODEL_PATH, budget, [])
    const h2 = await start('h2', MODEL_PATH, budget, [h1.node.p2pAddr])
    await waitFor('holders see each other', async () => (await clusterState(h1.node)).members.length === 2 ? true : undefined, 20_000)
    // 8 MB/s: 56 MB take ~7 s, long enough to kill a holder in the middle
    const f = await start('slow', MODEL, 2048, [h1.node.p2pAddr, h2.node.p2pAddr], { extraArgs: ['--fetch-max-rate', '8'] })
    const progress = async (): Promise<{ verifiedBytes: number, targetBytes: number } | undefined> =>
      (await clusterState(f.node)).members.find((m) => m.peerId === f.node.peerId)?.partials?.[0]
    await waitFor('the fetcher is mid-fetch', async () => { const p = await progress(); return p !== undefined && p.verifiedBytes > p.targetBytes * 0.2 && p.verifiedBytes < p.targetBytes ? p : undefined }, 45_000, 100)
    await stopProcess(h1.node, 'SIGKILL')
    running.splice(running.indexOf(h1.node), 1)
    const duo = [h2.node, f.node]
    const plan = await waitFor('a ready plan of the fetcher alone', async () => agreedReadyPlan(await Promise.all(duo.map(clusterState)), 1), 55_000, 200)
    assert.ok(plan.stages.some((s) => s.peerId === f.node.peerId && s.fetch !== undefined))
    const expected = (await reference).text.replace(/^ /, '')
    for (const n of duo) assert.equal((await complete(n, 16)).replace(/^ /, ''), expected, `text from ${n.name}`)
  })
})
