import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { NetnsLab, isRoot } from './helpers/netns-lab.js'
import { REPO_ROOT, startMeshNode, stopProcess, waitFor } from '../integration/helpers/mesh-node-process.js'
import type { MeshNodeProcess } from '../integration/helpers/mesh-node-process.js'
import { budgetForSplitMiB } from '../integration/helpers/split-budget.js'
import type { ClusterStateJson } from '../../src/shared/cluster-state.js'

/**
 * A 4-node mesh in network namespaces, cut 2 + 2 at the trunk between two bridges, then healed.
 * Budgets: side A's two nodes can hold stories260k between them (⌈5/2⌉ layers each), side B's cannot
 * (⌈5/3⌉ layers each: 4 of 5). During the cut A serves the same greedy text and B answers 503 with
 * the reason, in each dialect's shape; after the heal every node serves one plan id within 5 s. Two
 * clients keep requests in flight through cut and heal: each gets the unbroken greedy text or a clean
 * error, never a mix. A first stage still on a stale plan is refused and counted in /metrics.
 */
const MODEL = 'stories260k-f32'
const PROMPT = 'Once upon a time'
const MAX_TOKENS = 48
const P2P_PORT = 4001
const HEAL_BOUND_MS = 5000
const exec = promisify(execFile)

type Plan = NonNullable<ClusterStateJson['plan']>
interface Outcome { client: number, node: number, status: number, text?: string, error?: string, startedAt: number, ms: number }

describe('partition 2 + 2 in network namespaces (root)', { skip: isRoot() ? false : 'needs root for ip netns', timeout: 90_000 }, () => {
  const lab = new NetnsLab(4, { splitAt: 2 })
  const dir = mkdtempSync(join(tmpdir(), 'exo-partition-lab-'))
  const SIDE_A = [0, 1]
  const SIDE_B = [2, 3]
  let nodes: MeshNodeProcess[] = []
  let reference = ''
  let firstPlan: Plan | undefined

  const state = async (i: number): Promise<ClusterStateJson> => await lab.clusterState(i, nodes[i]!.httpUrl)
  /** states of the nodes `idx`, fetched from inside the first one's namespace (they must reach each other) */
  const statesOf = async (idx: number[]): Promise<ClusterStateJson[]> => await lab.clusterStates(idx[0]!, idx.map((i) => nodes[i]!.httpUrl))
  /** the ready plan every node of `idx` serves, when each of them sees exactly the members `idx` */
  const agreedPlan = async (idx: number[], got?: ClusterStateJson[]): Promise<Plan | undefined> => {
    const states = got ?? await statesOf(idx)
    const want = idx.map((i) => nodes[i]!.peerId).sort().join(',')
    if (states.some((s) => s.members.map((m) => m.peerId).sort().join(',') !== want)) return undefined
    const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : undefined))
    return ids.size === 1 && !ids.has(undefined) ? states[0]!.plan! : undefined
  }
  const complete = async (client: number, node: number, timeoutMs = 60_000): Promise<Outcome> => {
    const startedAt = Date.now()
    const body = { model: MODEL, prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0 }
    try {
      const r = await lab.http(client, `${nodes[node]!.httpUrl}/v1/completions`, { json: body, timeoutMs })
      const json = JSON.parse(r.body) as { choices?: Array<{ text: string }>, error?: { message: string } }
      return { client, node, status: r.status, text: json.choices?.[0]?.text, error: json.error?.message, startedAt, ms: Date.now() - startedAt }
    } catch (err) {
      return { client, node, status: 0, error: (err as Error).message, startedAt, ms: Date.now() - startedAt }
    }
  }
  /** epoch ms of the node's last log line after `since` that `match` accepts (0 when none) */
  const lastLogAt = (n: MeshNodeProcess, since: number, match: (j: { msg?: string, plan?: string }) => boolean): number => {
    let last = 0
    for (const line of n.stderr.split('\n')) {
      if (!line.startsWith('{')) continue
      try {
        const j = JSON.parse(line) as { time?: number, msg?: string, plan?: string }
        if ((j.time ?? 0) > since && match(j)) last = Math.max(last, j.time ?? 0)
      } catch { /* a partial line */ }
    }
    return last
  }
  const refusals = async (i: number): Promise<Map<string, number>> => {
    const text = (await lab.http(i, `${nodes[i]!.httpUrl}/metrics`)).body
    return new Map([...text.matchAll(/^exo_p2p_activation_refusals_total\{reason="(\w+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]))
  }

  before(async () => {
    const t0 = Date.now()
    process.once('exit', () => { lab.down() }) // also when the runner is killed or force-exits mid-test
    lab.up()
    const path = join(REPO_ROOT, 'models', `${MODEL}.gguf`)
    const budgetA = budgetForSplitMiB(path, MODEL, 2).mib
    const budgetB = budgetForSplitMiB(path, MODEL, 3).mib
    // each node is kept as soon as it runs, so after() stops it even when another fails to start
    await Promise.all([0, 1, 2, 3].map(async (i) => {
      nodes[i] = await startMeshNode({
        name: `${i < 2 ? 'a' : 'b'}${i % 2 + 1}`, dataDir: join(dir, `n${i}`), host: lab.nodes[i]?.ip, p2pPort: P2P_PORT, mdns: true, prefix: lab.exec(i),
        extraArgs: ['--memory-budget', String(i < 2 ? budgetA : budgetB), '--log-level', 'info']
      }, 60_000)
    }))
    process.stderr.write(`# 4 nodes started in ${Date.now() - t0} ms\n`)
    firstPlan = await waitFor('one ready plan on all four nodes', async () => await agreedPlan([0, 1, 2, 3]), 40_000, 200)
    const ref = await complete(0, 0)
    assert.equal(ref.status, 200, ref.error)
    reference = ref.text ?? ''
    process.stderr.write(`# plan ready and reference text ${Date.now() - t0} ms after the start\n`)
    assert.ok(reference.length > 40, `a long greedy completion: ${reference}`)
  })

  after(async () => {
    await Promise.all(nodes.filter((n) => n !== undefined).map(async (n) => { await stopProcess(n, 'SIGKILL') }))
    if (process.env.EXO_TEST_DUMP_LOGS !== undefined) for (const n of nodes.filter((n) => n !== undefined)) process.stderr.write(`\n===== ${n.name}\n${n.stderr}`)
    lab.down()
    rmSync(dir, { recursive: true, force: true })
  })

  it('cut 2 + 2: A serves, B answers 503 with the reason; healed, one plan id within 5 s; in-flight requests never mix plans', async (t) => {
    // clients inside each half keep requests going through the cut and the heal
    const outcomes: Outcome[] = []
    let loading = true
    const loop = async (client: number, targets: number[]): Promise<void> => {
      for (let k = 0; loading; k++) {
        const r = await complete(client, targets[k % targets.length]!)
        outcomes.push(r)
        if (r.status !== 200) await new Promise((resolve) => setTimeout(resolve, 1000)) // B's 503s come back at once
      }
    }
    const clients = [loop(0, SIDE_A), loop(2, SIDE_B)]
    await new Promise((resolve) => setTimeout(resolve, 500))

    lab.setTrunk(false)
    const tCut = Date.now()
    const planA = await waitFor('side A agrees a plan of its own', async () => await agreedPlan(SIDE_A), 20_000, 200)
    const cutMs = Date.now() - tCut
    const want = SIDE_B.map((i) => nodes[i]!.peerId).sort().join(',')
    await waitFor('side B sees only itself', async () => {
      const s = await statesOf(SIDE_B)
      return s.every((x) => x.members.map((m) => m.peerId).sort().join(',') === want) ? true : undefined
    }, 10_000, 200)
    t.diagnostic(`cut: side A serves plan ${planA.id.slice(0, 12)} (${planA.stages.map((s) => s.name).join(' → ')}) ${cutMs} ms after the cut (before: ${firstPlan!.id.slice(0, 12)} ${firstPlan!.stages.map((s) => s.name).join(' → ')})`)
    for (const i of SIDE_A) {
      const r = await complete(i, i)
      assert.equal(r.status, 200, `${nodes[i]!.name}: ${r.error}`)
      assert.equal(r.text, reference, `${nodes[i]!.name} serves the same greedy text during the cut`)
    }
    // side B cannot hold the model: 503 with the reason, in each dialect's shape
    const b = nodes[2]!.httpUrl
    const openai = await lab.http(2, `${b}/v1/completions`, { json: { model: MODEL, prompt: PROMPT, max_tokens: 4 }, timeoutMs: 20_000 })
    const anthropic = await lab.http(2, `${b}/v1/messages`, { json: { model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: PROMPT }] }, timeoutMs: 20_000 })
    const ollama = await lab.http(3, `${nodes[3]!.httpUrl}/api/generate`, { json: { model: MODEL, prompt: PROMPT, stream: false, options: { num_predict: 4 } }, timeoutMs: 20_000 })
    for (const r of [openai, anthropic, ollama]) assert.equal(r.status, 503, r.body)
    const o = JSON.parse(openai.body) as { error: { message: string, code: string } }
    const a = JSON.parse(anthropic.body) as { type: string, error: { type: string, message: string } }
    const l = JSON.parse(ollama.body) as { error: string }
    assert.equal(o.error.code, 'NO_PLAN', openai.body)
    assert.match(o.error.message, /memory|budget|fit/i)
    assert.equal(a.type, 'error')
    assert.match(a.error.message, /memory|budget|fit/i)
    assert.match(l.error, /memory|budget|fit/i)
    t.diagnostic(`side B: ${o.error.message}`)

    lab.setTrunk(true)
    const tHeal = Date.now()
    let rejoinedMs: number | undefined
    const healed = await waitFor('every node serves one plan', async () => {
      const got = await statesOf([0, 1, 2, 3])
      if (rejoinedMs === undefined && got.every((s) => s.members.length === 4)) rejoinedMs = Date.now() - tHeal
      return await agreedPlan([0, 1, 2, 3], got)
    }, 20_000, 200).catch(async (err: Error) => {
      const s = await Promise.all([0, 1, 2, 3].map(state))
      throw new Error(`${err.message}; views: ${s.map((x, i) => `${nodes[i]!.name}: members ${x.members.map((m) => m.name).join(',')} links ${x.links.length} plan ${x.plan?.id.slice(0, 8)} ready ${x.plan?.ready} ${x.planReason ?? ''}`).join(' | ')}`)
    })
    const seenMs = Date.now() - tHeal
    // when the nodes themselves got there (their logs; one clock): the last rejoin or switch to the healed plan
    const reached = nodes.map((n) => lastLogAt(n, tHeal, (j) => j.msg === 'member joined' || (j.msg === 'plan ready: serving requests' && j.plan === healed.id.slice(0, 12))))
    assert.ok(reached.every((x) => x > 0), 'every node logged the other side rejoining')
    const healMs = Math.max(...reached) - tHeal
    t.diagnostic(`healed: all four serve plan ${healed.id.slice(0, 12)} (${healed.stages.map((s) => s.name).join(' → ')}) ${healMs} ms after the trunk came back by the nodes' logs (seen by the test's polls after ${seenMs} ms; every view had 4 members by poll ${rejoinedMs} ms)`)
    for (const i of [0, 1, 2, 3]) {
      const r = await complete(i, i)
      assert.equal(r.status, 200, `${nodes[i]!.name} after the heal: ${r.error}`)
      assert.equal(r.text, reference)
    }
    loading = false
    await Promise.all(clients)

    // every request in flight through cut and heal: the unbroken greedy text, or a clean error — never a mix
    const ok = outcomes.filter((x) => x.status === 200)
    for (const x of ok) assert.equal(x.text, reference, `request to ${nodes[x.node]!.name} at +${x.startedAt - tCut} ms returned other text: ${x.text}`)
    const failed = outcomes.filter((x) => x.status !== 200)
    for (const x of failed) {
      assert.equal(x.status, 503, `a clean failure (503 with the reason): ${x.status} ${x.error}`)
      if (x.status === 503) assert.ok((x.error ?? '').length > 0)
    }
    assert.ok(healMs <= HEAL_BOUND_MS, `one plan id ${healMs} ms after the heal (bound ${HEAL_BOUND_MS} ms)`)
    t.diagnostic(`in flight: ${outcomes.length} requests, ${ok.length} with the reference text, ${failed.length} failed cleanly (${failed.map((x) => `${x.status}@${nodes[x.node]!.name}+${x.startedAt - tCut}ms/${x.ms}ms`).join(', ')})`)

    // a first stage still on a stale plan (side A's, or the one before the cut) is refused, and counted
    const stale = [planA.id, firstPlan!.id].find((id) => id !== healed.id) ?? healed.id.replace(/^./, (c) => c === '0' ? '1' : '0')
    const target = nodes.findIndex((n) => n.peerId === healed.stages[1]?.peerId)
    assert.ok(target >= 0, 'the healed plan has a second stage')
    const before = await refusals(target)
    const [cmd, ...args] = [...lab.exec(target === 0 ? 1 : 0), process.execPath, '--import', 'tsx', 'test/lab/helpers/activation-probe.ts', nodes[target]!.p2pAddr, stale, '1']
    const probe = JSON.parse((await exec(cmd!, args, { cwd: REPO_ROOT, timeout: 20_000 })).stdout) as { code?: string }
    assert.equal(probe.code, 'PLAN_MISMATCH', JSON.stringify(probe))
    const afterProbe = await refusals(target)
    assert.equal((afterProbe.get('plan_mismatch') ?? 0) - (before.get('plan_mismatch') ?? 0), 1, 'the refusal is counted once')
    const totals = new Map<string, number>()
    for (const i of [0, 1, 2, 3]) for (const [k, v] of await refusals(i)) totals.set(k, (totals.get(k) ?? 0) + v)
    t.diagnostic(`activation refusals, all nodes: ${[...totals].map(([k, v]) => `${k}=${v}`).join(' ')} (1 plan_mismatch from the stale-plan probe)`)
  })
})
