import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import type { ClusterStateJson } from '../../src/shared/cluster-state.js'
import { clusterState, metrics, startMeshNode, stopProcess, waitFor } from './helpers/mesh-node-process.js'
import type { MeshNodeProcess } from './helpers/mesh-node-process.js'

/**
 * Failover, for real: five `exo-p2p start` processes whose 1 MiB budgets force stories260k (5 layers) into
 * a 3-stage ring, so two nodes are spare. A greedy stream is running when one of its stages is
 * SIGKILLed — first a later stage (the client talks to the first stage), then the first stage itself
 * (the client talks to another node). The client's stream pauses while the mesh notices and agrees a
 * new plan, then goes on: its text equals the uninterrupted run's, token for token.
 */
const MODEL = 'stories260k-f32'
const PROMPT = 'Once upon a time'
const MAX_TOKENS = 480

let nodes: MeshNodeProcess[] = []
const dirs: string[] = []

type Plan = NonNullable<ClusterStateJson['plan']>

/** The ready plan every live node serves, when they all agree (optionally: not `notId`). */
async function agreedPlan (live: MeshNodeProcess[], notId?: string): Promise<Plan | undefined> {
  const states = await Promise.all(live.map(clusterState))
  const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : undefined))
  if (ids.size !== 1 || ids.has(undefined) || ids.has(notId)) return undefined
  return states[0]!.plan ?? undefined
}

const byName = (name: string): MeshNodeProcess => nodes.find((n) => n.name === name)!
const alive = (): MeshNodeProcess[] => nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null)

/** Streams a greedy completion from `api`; calls `midway` once after the 5th text chunk. Returns the text and the longest gap between chunks. */
async function stream (api: MeshNodeProcess, midway?: () => void): Promise<{ text: string, finish: string | null, longestGapMs: number }> {
  const client = new OpenAI({ baseURL: `${api.httpUrl}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 90_000 })
  const s = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0, stream: true })
  let text = ''
  let finish: string | null = null
  let chunks = 0
  let last = performance.now()
  let longestGapMs = 0
  for await (const c of s) {
    const now = performance.now()
    longestGapMs = Math.max(longestGapMs, now - last)
    last = now
    text += c.choices[0]?.text ?? ''
    finish = c.choices[0]?.finish_reason ?? finish
    if (++chunks === 5) midway?.()
  }
  return { text, finish, longestGapMs }
}

let expected = ''

before(async () => {
  const start = async (name: string, peers: string[]): Promise<MeshNodeProcess> => {
    const dataDir = mkdtempSync(join(tmpdir(), `exo-failover-${name}-`))
    dirs.push(dataDir)
    return await startMeshNode({ name, dataDir, peers, extraArgs: ['--memory-budget', '1', '--log-level', 'info'] })
  }
  const a = await start('fo-a', [])
  nodes = [a, ...await Promise.all(['fo-b', 'fo-c', 'fo-d', 'fo-e'].map(async (n) => await start(n, [a.p2pAddr])))]
  const plan = await waitFor('a ready plan agreed by all five nodes', async () => await agreedPlan(nodes), 60_000, 100)
  assert.equal(plan.stages.length, 3, 'the budgets force three stages')
  // the uninterrupted run every failover must reproduce
  const ref = await stream(byName(plan.stages[0]!.name))
  assert.equal(ref.finish, 'length')
  expected = ref.text
  assert.ok(expected.length > 500, `a long completion (${expected.length} characters)`)
})

after(async () => {
  await Promise.all(nodes.map(async (n) => { await stopProcess(n) }))
  if (process.env.EXO_TEST_DUMP_LOGS !== undefined) for (const n of nodes) process.stderr.write(`\n===== ${n.name}\n${n.stderr}`)
  nodes = []
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('failover: a stage dies mid-stream, the stream goes on', () => {
  it('the last stage is killed: the first stage (the API node) resumes on the next plan', async () => {
    const plan = (await agreedPlan(alive()))!
    const api = byName(plan.stages[0]!.name)
    const victim = byName(plan.stages.at(-1)!.name)
    const t0 = Date.now()
    const r = await stream(api, () => { victim.proc.kill('SIGKILL') })
    assert.ok(victim.proc.signalCode === 'SIGKILL' || victim.proc.exitCode === null, 'the victim was killed')
    assert.equal(r.text, expected)
    assert.equal(r.finish, 'length')
    const m = await metrics(api)
    assert.equal(m.get('exo_p2p_pipeline_failovers_total{outcome="started"}'), 1)
    assert.equal(m.get('exo_p2p_pipeline_failovers_total{outcome="resumed"}'), 1)
    const next = await waitFor('the survivors agree a new plan', async () => await agreedPlan(alive(), plan.id), 30_000, 100)
    assert.ok(!next.stages.some((s) => s.name === victim.name))
    process.stderr.write(`# killed ${victim.name} (last stage); the stream paused ${r.longestGapMs.toFixed(0)} ms and resumed on plan ${next.id.slice(0, 12)} (${next.stages.map((s) => s.name).join(' → ')}); ${Date.now() - t0} ms in all\n`)
  })

  it('the first stage is killed: the API node on another machine resumes the request on the next plan', async () => {
    const plan = (await agreedPlan(alive()))!
    const victim = byName(plan.stages[0]!.name)
    // a survivor the client talks to: a spare node if there is one, else a later stage
    const api = alive().find((n) => !plan.stages.some((s) => s.name === n.name)) ?? byName(plan.stages[1]!.name)
    const r = await stream(api, () => { victim.proc.kill('SIGKILL') })
    assert.equal(r.text, expected)
    assert.equal(r.finish, 'length')
    const m = await metrics(api)
    assert.equal(m.get('exo_p2p_pipeline_failovers_total{outcome="resumed"}'), 1)
    const next = await waitFor('the survivors agree a new plan', async () => await agreedPlan(alive(), plan.id), 30_000, 100)
    process.stderr.write(`# killed ${victim.name} (first stage) under a client of ${api.name}; the stream paused ${r.longestGapMs.toFixed(0)} ms; new plan ${next.stages.map((s) => s.name).join(' → ')}\n`)
    // nothing is left behind on the survivors
    const sessions = async (): Promise<number[]> => await Promise.all(alive().map(async (n) => (await metrics(n)).get('exo_p2p_pipeline_active_sessions') ?? -1))
    await waitFor('every survivor frees the request', async () => (await sessions()).every((x) => x === 0) ? true : undefined, 10_000)
  })
})
