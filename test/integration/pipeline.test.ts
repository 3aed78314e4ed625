import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { asModelId, asRequestId } from '../../src/shared/ids.js'
import type { ClusterStateJson } from '../../src/shared/cluster-state.js'
import { clusterState, metrics, REPO_ROOT, startMeshNode, stopProcess, waitFor } from './helpers/mesh-node-process.js'
import { budgetForSplitMiB } from './helpers/split-budget.js'
import { exoCli } from '../helpers/exo-cli.js'
import type { MeshNodeProcess } from './helpers/mesh-node-process.js'
import { generatedModel } from '../model/helpers/generated-models.js'
import { referenceGreedy } from '../model/helpers/completion-reference.js'
import { modelIdOfPath } from '../../src/node/model-registry.js'
import { LocalInferenceService } from '../../src/node/local-inference-service.js'
import { ggmlShardEngine } from '../../src/node/ggml-shard-engine.js'
import type { InferenceRequest } from '../../src/shared/inference.js'

/**
 * Three real `exo-p2p start` processes on 127.0.0.1 whose memory budgets force a split of the bundled
 * stories260k (5 layers): they agree on one plan, every node's HTTP port returns llama.cpp's greedy text,
 * concurrent requests complete, and a client that disconnects leaves no KV cache on any stage.
 */
const MODEL = 'stories260k-f32'
const PROMPT = 'Once upon a time'
/** node-llama-cpp 3.22.1 LlamaCompletion, greedy, 30 tokens (test/fixtures/models/README.md) */
const REFERENCE = ', there was a little girl named Lily. She loved to play outside in the park. One day,'

let nodes: MeshNodeProcess[] = []
const dirs: string[] = []
let agreedAfterMs = 0
/** the most layers one stage can hold under the test's budget */
let maxLayersPerStage = 0

async function complete (node: MeshNodeProcess, maxTokens = 30, model = MODEL): Promise<string> {
  const res = await fetch(`${node.httpUrl}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt: PROMPT, max_tokens: maxTokens, temperature: 0 }),
    signal: AbortSignal.timeout(30_000)
  })
  const body = await res.json() as { choices?: Array<{ text: string }>, error?: unknown }
  assert.equal(res.status, 200, `${node.name}: ${JSON.stringify(body)}`)
  return body.choices![0]!.text
}

/** The plan every node serves, when all agree and it is ready. */
function agreedPlan (states: ClusterStateJson[]): NonNullable<ClusterStateJson['plan']> | undefined {
  const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : undefined))
  if (ids.size !== 1 || ids.has(undefined)) return undefined
  return states[0]!.plan ?? undefined
}

async function activeSessions (): Promise<number[]> {
  return await Promise.all(nodes.map(async (n) => (await metrics(n)).get('exo_p2p_pipeline_active_sessions') ?? -1))
}

async function startTrio (prefix: string, extraArgs: string[]): Promise<MeshNodeProcess[]> {
  const start = async (name: string, peers: string[]): Promise<MeshNodeProcess> => {
    const dataDir = mkdtempSync(join(tmpdir(), `exo-pipeline-${name}-`))
    dirs.push(dataDir)
    return await startMeshNode({ name, dataDir, peers, extraArgs: [...extraArgs, '--log-level', 'info'] })
  }
  const a = await start(`${prefix}a`, [])
  const [b, c] = await Promise.all([start(`${prefix}b`, [a.p2pAddr]), start(`${prefix}c`, [a.p2pAddr])])
  return [a, b, c]
}

before(async () => {
  const split = budgetForSplitMiB(join(REPO_ROOT, 'models', `${MODEL}.gguf`), MODEL, 3)
  maxLayersPerStage = split.maxLayersPerStage
  const budget = String(split.mib)
  nodes = await startTrio('stage-', ['--memory-budget', budget])
  const t0 = Date.now()
  await waitFor('one ready plan agreed by all three nodes', async () => agreedPlan(await Promise.all(nodes.map(clusterState))), 60_000, 100)
  agreedAfterMs = Date.now() - t0
})

after(async () => {
  await Promise.all(nodes.map(async (n) => { await stopProcess(n) }))
  if (process.env.EXO_TEST_DUMP_LOGS !== undefined) for (const n of nodes) process.stderr.write(`\n===== ${n.name}\n${n.stderr}`)
  nodes = []
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('pipeline across three processes', () => {
  it('all nodes agree on one plan of ≥ 2 stages within their budgets', async () => {
    const states = await Promise.all(nodes.map(clusterState))
    const plan = agreedPlan(states)
    assert.ok(plan !== undefined)
    assert.ok(plan.stages.length >= 2, `expected a split, got ${plan.stages.length} stage(s)`)
    assert.equal(plan.stages[0]!.start, 0)
    assert.equal(plan.stages.at(-1)!.end, 5)
    for (const s of plan.stages) assert.ok(s.end - s.start <= maxLayersPerStage, `stage ${s.name} holds ${s.end - s.start} layers`)
    // the shards every node announces for that plan match the stages
    for (const s of plan.stages) {
      const member = states[0]!.members.find((m) => m.peerId === s.peerId)!
      assert.ok(member.shards.some((x) => x.planId === plan.id && x.ready && x.start === s.start && x.end === s.end), `${s.name} announces its shard`)
    }
    process.stderr.write(`# plan ${plan.id.slice(0, 12)} agreed ${agreedAfterMs} ms after the last node started: ${plan.stages.map((s) => `${s.name}[${s.start},${s.end})`).join(' → ')}\n`)
  })

  it('the greedy completion on EACH node equals llama.cpp\'s text', async () => {
    for (const n of nodes) assert.equal(await complete(n), REFERENCE, `text from ${n.name}`)
  })

  it('4 concurrent requests all complete correctly', async () => {
    const texts = await Promise.all([0, 1, 2, 3].map(async (i) => await complete(nodes[i % nodes.length]!)))
    for (const t of texts) assert.equal(t, REFERENCE)
    assert.deepEqual(await waitFor('sessions freed', async () => { const s = await activeSessions(); return s.every((x) => x === 0) ? s : undefined }, 5000), [0, 0, 0])
  })

  it('structured output through the pipeline (grammar on the last stage) equals the local engine\'s', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer' } }, required: ['name', 'age'], additionalProperties: false }
    const local = new LocalInferenceService({ engine: ggmlShardEngine, threads: 1 })
    let expected = ''
    try {
      const req: InferenceRequest = { id: asRequestId('ref'), model: asModelId(MODEL), prompt: { kind: 'chat', messages: [{ role: 'user', content: 'Lily was' }] }, maxTokens: 60, sampling: { temperature: 0 }, stop: [], grammar: { kind: 'json_schema', schema } }
      for await (const e of local.generate(req, { signal: AbortSignal.timeout(30_000) })) if (e.type === 'token') expected += e.text
    } finally { await local.dispose() }
    const res = await fetch(`${nodes[1]!.httpUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Lily was' }], max_tokens: 60, temperature: 0, response_format: { type: 'json_schema', json_schema: { name: 'p', schema } } }),
      signal: AbortSignal.timeout(30_000)
    })
    const body = await res.json() as { choices: Array<{ message: { content: string } }> }
    const text = body.choices[0]!.message.content
    assert.equal(text, expected)
    assert.deepEqual(Object.keys(JSON.parse(text) as object).sort(), ['age', 'name'])
  })

  it('`exo-p2p plan --json` and `peers` show the plan; /metrics shows per-stage compute and tokens served', async () => {
    const run = async (...args: string[]): Promise<string> => (await promisify(execFile)(process.execPath, [exoCli(), ...args], { cwd: REPO_ROOT, timeout: 30_000 })).stdout
    const json = JSON.parse(await run('plan', '--json', '--api', nodes[2]!.httpUrl)) as { id: string, ready: boolean, stages: Array<{ name: string, start: number, end: number }> }
    const plan = agreedPlan(await Promise.all(nodes.map(clusterState)))!
    assert.equal(json.id, plan.id)
    assert.equal(json.ready, true)
    assert.deepEqual(json.stages.map((s) => [s.name, s.start, s.end]), plan.stages.map((s) => [s.name, s.start, s.end]))
    const peers = await run('peers', '--api', nodes[0]!.httpUrl)
    for (const st of plan.stages) assert.match(peers, new RegExp(`${st.name} .*${MODEL}\\[${st.start},${st.end}\\)`))
    assert.match(peers, new RegExp(`plan ${plan.id.slice(0, 12)} \\(${MODEL}\\) ready`))
    const byName = new Map(nodes.map((n) => [n.name, n]))
    const first = await metrics(byName.get(plan.stages[0]!.name)!)
    assert.ok((first.get('exo_p2p_pipeline_tokens_served_total') ?? 0) > 0)
    assert.ok((first.get('exo_p2p_pipeline_ring_seconds_count') ?? 0) > 0)
    assert.ok((first.get('exo_p2p_pipeline_hop_seconds_count') ?? 0) > 0)
    const all = await Promise.all(nodes.map(metrics))
    assert.ok(all.reduce((a, m) => a + (m.get('exo_p2p_time_to_first_token_seconds_count') ?? 0), 0) > 0, 'the API nodes timed first tokens')
    assert.ok(all.reduce((a, m) => a + (m.get('exo_p2p_inter_token_latency_seconds_count') ?? 0), 0) > 0, 'and the gaps between tokens')
    assert.ok((first.get('process_resident_memory_bytes') ?? 0) > 0)
    for (const st of plan.stages.slice(1)) {
      const m = await metrics(byName.get(st.name)!)
      assert.ok((m.get('exo_p2p_stage_compute_seconds_count{role="stage"}') ?? 0) > 0, `${st.name} computed`)
    }
  })

  it('a client that disconnects mid-stream leaves no KV cache on any stage', async () => {
    const ctrl = new AbortController()
    const res = await fetch(`${nodes[1]!.httpUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: PROMPT, max_tokens: 1500, temperature: 0, stream: true }),
      signal: ctrl.signal
    })
    assert.equal(res.status, 200)
    const reader = res.body!.getReader()
    let received = ''
    while (!received.includes('"text"')) received += new TextDecoder().decode((await reader.read()).value)
    // mid-stream: every stage holds this request's session
    const during = await activeSessions()
    assert.ok(during.every((x) => x >= 1), `sessions during the stream: ${during.join(', ')}`)
    ctrl.abort()
    await reader.cancel().catch(() => {})
    assert.deepEqual(await waitFor('every stage to free the cancelled request', async () => { const s = await activeSessions(); return s.every((x) => x === 0) ? s : undefined }, 10_000), [0, 0, 0])
    // and the pipeline still serves
    assert.equal(await complete(nodes[2]!), REFERENCE)
  })

  it('a node that joins with room for the whole model takes over; requests keep succeeding during the change', async () => {
    const before = agreedPlan(await Promise.all(nodes.map(clusterState)))!
    const dataDir = mkdtempSync(join(tmpdir(), 'exo-pipeline-big-'))
    dirs.push(dataDir)
    const big = await startMeshNode({ name: 'stage-big', dataDir, peers: [nodes[0]!.p2pAddr], extraArgs: ['--memory-budget', '64', '--log-level', 'info'] })
    nodes.push(big)
    const joinedAt = Date.now()
    // clients keep asking every node while the plan changes (make before break)
    let changing = true
    const during: Array<Promise<string>> = []
    const load = (async () => {
      for (let i = 0; changing; i++) {
        during.push(complete(nodes[i % 3]!)) // one per 150 ms, at most 8 in flight (stages admit 16; a loaded machine is slower)
        await Promise.all([new Promise((resolve) => setTimeout(resolve, 150)), during.at(-8)?.catch(() => undefined)])
      }
    })()
    const after = await waitFor('all four nodes to serve a new plan', async () => {
      const p = agreedPlan(await Promise.all(nodes.map(clusterState)))
      return p !== undefined && p.id !== before.id ? p : undefined
    }, 30_000, 100)
    const convergedMs = Date.now() - joinedAt
    changing = false
    await load
    for (const t of await Promise.all(during)) assert.equal(t, REFERENCE)
    assert.deepEqual(after.stages.map((s) => [s.name, s.start, s.end]), [['stage-big', 0, 5]], 'one node that fits beats any split')
    process.stderr.write(`# after the join: plan ${after.id.slice(0, 12)} agreed by all 4 nodes ${convergedMs} ms after the newcomer started; ${during.length} requests during the change all correct\n`)
    for (const n of nodes) assert.equal(await complete(n), REFERENCE, `text from ${n.name} on the new plan`)
    // a node that holds another model (a missing --model file no longer starts a node) routes requests for this
    // one: to the plan it learns from the announcements
    const routerDir = mkdtempSync(join(tmpdir(), 'exo-pipeline-router-'))
    dirs.push(routerDir)
    const otherModel = fileURLToPath(new URL('../fixtures/models/tinystories-656k-q8_0.gguf', import.meta.url))
    const router = await startMeshNode({ name: 'stage-router', dataDir: routerDir, peers: [nodes[0]!.p2pAddr], extraArgs: ['--model', otherModel, '--log-level', 'info'] })
    nodes.push(router)
    assert.equal(await waitFor('the router to see the ready plan', async () => { try { return await complete(router) } catch { return undefined } }, 15_000, 200), REFERENCE)
    assert.equal((await clusterState(router)).members.find((m) => m.name === 'stage-router')!.shards.filter((s) => s.model === MODEL).length, 0)
    // the router lists what the whole mesh holds, with the nodes that hold it; an unknown model's error names them
    const listed = await (await fetch(`${router.httpUrl}/v1/models`)).json() as { data: Array<{ id: string, held_by: string[] }> }
    const served = listed.data.find((m) => m.id === MODEL)
    assert.ok(served !== undefined, JSON.stringify(listed))
    for (const n of nodes.slice(0, 3)) assert.ok(served.held_by.includes(n.name), `${n.name} missing from held_by ${served.held_by.join(', ')}`)
    const unknown = await fetch(`${router.httpUrl}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'no-such-model', prompt: 'x' }) })
    assert.equal(unknown.status, 404)
    assert.match(((await unknown.json()) as { error: { message: string } }).error.message, new RegExp(MODEL))
    // the old stages are released once idle (after a grace period)
    await waitFor('old stages unloaded', async () => {
      const loaded = await Promise.all(nodes.slice(0, 3).map(async (n) => (await metrics(n)).get('exo_p2p_pipeline_loaded_shards')))
      return loaded.every((x) => x === 0) ? loaded : undefined
    }, 15_000, 200)
  })
})

describe('pipeline of a generated 8-layer model (Llama 2 vocabulary, Q8_0)', () => {
  let trio: MeshNodeProcess[] = []
  let path = ''
  before(async () => {
    await Promise.all(nodes.map(async (n) => { await stopProcess(n) })) // the stories cluster is done: free the CPU
    path = generatedModel('q8_0', { layers: 8 })
    trio = await startTrio('gen-', ['--model', path, '--memory-budget', String(budgetForSplitMiB(path, modelIdOfPath(path), 3).mib)])
  })
  after(async () => { await Promise.all(trio.map(async (n) => { await stopProcess(n) })) })

  it('splits into ≥ 2 stages and every node returns llama.cpp\'s greedy text', async () => {
    const plan = await waitFor('an agreed plan', async () => agreedPlan(await Promise.all(trio.map(clusterState))), 60_000, 100)
    assert.ok(plan.stages.length >= 2)
    process.stderr.write(`# generated model: plan ${plan.stages.map((s) => `${s.name}[${s.start},${s.end})`).join(' → ')}\n`)
    const reference = (await referenceGreedy(path, PROMPT, 30)).text
    assert.ok(reference.length > 0)
    for (const n of trio) assert.equal(await complete(n, 30, modelIdOfPath(path)), reference, `text from ${n.name}`)
  })

  it('16 concurrent greedy requests (batched in every stage, staggered through the ring) each equal their solo output', async () => {
    const model = modelIdOfPath(path)
    /** streams a greedy completion; resolves `first` when its first token arrives */
    const ask = async (n: MeshNodeProcess, prompt: string, first?: () => void): Promise<string> => {
      const res = await fetch(`${n.httpUrl}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, prompt, max_tokens: 16, temperature: 0, stream: true }),
        signal: AbortSignal.timeout(90_000)
      })
      assert.equal(res.status, 200, res.status === 200 ? '' : await res.text())
      let text = ''
      let buf = ''
      const reader = res.body!.getReader()
      const decoder = new TextDecoder()
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buf += decoder.decode(value, { stream: true })
        const events = buf.split('\n\n')
        buf = events.pop()!
        for (const ev of events) {
          const data = ev.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('')
          if (data === '' || data === '[DONE]') continue
          first?.()
          text += (JSON.parse(data) as { choices: Array<{ text: string }> }).choices[0]!.text
        }
      }
      return text
    }
    const words = ['red', 'green', 'blue', 'small', 'big', 'old', 'new', 'fast']
    const prompts = Array.from({ length: 16 }, (_, i) => `${PROMPT} ${words[i % 8]} ${words[(i * 3 + 1) % 8]}${i >= 8 ? ' again and again' : ''}`)
    const solo: string[] = []
    for (const p of prompts) solo.push(await ask(trio[0]!, p))
    // Each request is admitted when the previous one has its first token, so every prompt is prefilled in a graph
    // of < 64 rows (its own tokens + the others' decode tokens), as alone: with flash attention (the nodes'
    // default) ggml switches to its tiled kernel at 64 query rows, which rounds differently — as in llama.cpp.
    // The requests then decode concurrently: one graph per step for all of them in every stage.
    const t0 = performance.now()
    const together: Array<Promise<string>> = []
    for (const [i, p] of prompts.entries()) {
      await new Promise<void>((resolve, reject) => { together.push(ask(trio[i % trio.length]!, p, resolve).catch((err) => { reject(err); throw err })) })
    }
    const texts = await Promise.all(together)
    process.stderr.write(`# 16 concurrent requests through the pipeline: ${(performance.now() - t0).toFixed(0)} ms\n`)
    assert.deepEqual(texts, solo)
  })
})
