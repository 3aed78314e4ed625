/**
 * bench-serve's cluster half: real `exo-p2p start` processes on 127.0.0.1 (1 node, or k stages whose memory
 * budgets force a k-way split), each pinned with `taskset -c` to one core and 1 thread; aggregate decode tok/s
 * of N concurrent completions; time to first token of a conversation's 2nd turn vs its 1st.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readModelMetadata } from '../src/engine/index.js'
import { modelCardFromMetadata } from '../src/node/pipeline/model-card.js'
import { modelIdOfPath } from '../src/node/model-registry.js'
import { clusterState, startMeshNode, stopProcess, waitFor } from '../test/integration/helpers/mesh-node-process.js'
import type { MeshNodeProcess } from '../test/integration/helpers/mesh-node-process.js'

export interface Cluster {
  k: number
  nodes: MeshNodeProcess[]
  dirs: string[]
  first: MeshNodeProcess
  model: string
  /** the plan's layer ranges, `[start, end)` per stage */
  ranges: string
  stages: Array<{ start: number, end: number }>
}

/** KV headroom per stage: this many sessions of 256 cells beyond the full-context KV the plan counts. */
const HEADROOM_SESSIONS = 16

/**
 * Whole-MiB memory budgets of the `k` nodes (the planner's memory model, flash attention off as the nodes here
 * run), so that the plan is the pipeline whose stages are balanced: layer counts that minimise the slowest stage,
 * costed like the planner does (by bytes; the last stage also runs the output projection, about 3 layers of the
 * bench model, so an even split of the layers leaves it the slowest). Node i can hold stage i of that split and
 * not one layer more, plus KV for up to HEADROOM_SESSIONS short sessions (less where k − 1 nodes could then hold
 * the model).
 * Without pinning, the planner's latency objective puts as many layers as fit on whichever node measured a
 * little faster on this busy machine, and the split would change from run to run.
 */
function budgetsMiB (path: string, k: number): number[] {
  const meta = readModelMetadata(path)
  const card = modelCardFromMetadata(modelIdOfPath(path), meta, meta.contextLength, false)
  const layer = card.layerBytes.map((b) => b + card.kvBytesPerTokenPerLayer * card.contextSize + (card.layerOverheadBytes ?? 0))
  const stage = card.stageOverheadBytes ?? 0
  const sum = (a: number, b: number): number => layer.slice(a, b).reduce((x, y) => x + y, 0)
  const whole = card.embeddingBytes + card.outputBytes + stage + sum(0, card.nLayers)
  const MiB = 2 ** 20
  if (k === 1) return [Math.ceil(whole / MiB) + 64]
  const bounds = [0, ...balancedCuts(card.layerBytes, card.outputBytes, k), card.nLayers]
  const stages = bounds.slice(0, k).map((start, i) => {
    const end = bounds[i + 1]!
    const need = stage + sum(start, end) + (i === 0 ? card.embeddingBytes : 0) + (i === k - 1 ? card.outputBytes : 0)
    return { need, headroom: Math.min(HEADROOM_SESSIONS * 256 * card.kvBytesPerTokenPerLayer * (end - start), Math.min(...layer) - MiB) }
  })
  // every split into k − 1 stages needs the whole model and k − 1 stage overheads: k − 1 budgets must add up to less
  for (let f = 1; f >= 0; f -= 0.125) {
    const budgets = stages.map((st) => Math.floor((st.need + f * st.headroom) / MiB))
    const largest = [...budgets].sort((a, b) => b - a).slice(0, k - 1).reduce((a, b) => a + b, 0)
    if (largest * MiB < whole + (k - 2) * stage) return budgets
  }
  throw new Error(`${k - 1} nodes could hold a ${k}-stage split of ${path}`)
}

/** Layer cuts of a k-stage split minimising the slowest stage (bytes of its layers, the output on the last); more layers first on ties. */
function balancedCuts (layerBytes: readonly number[], outputBytes: number, k: number): number[] {
  const n = layerBytes.length
  let best: { cost: number, cuts: number[] } | undefined
  const walk = (start: number, left: number, cuts: number[], worst: number): void => {
    if (left === 1) {
      const cost = Math.max(worst, layerBytes.slice(start).reduce((a, b) => a + b, 0) + outputBytes)
      if (best === undefined || cost < best.cost) best = { cost, cuts }
      return
    }
    for (let end = n - left + 1; end > start; end--) walk(end, left - 1, [...cuts, end], Math.max(worst, layerBytes.slice(start, end).reduce((a, b) => a + b, 0)))
  }
  walk(0, k, [], 0)
  return best!.cuts
}

export async function startCluster (path: string, k: number, cpus: readonly string[]): Promise<Cluster> {
  const model = modelIdOfPath(path)
  const budgets = budgetsMiB(path, k)
  const cluster: Cluster = { k, nodes: [], dirs: [], first: undefined as unknown as MeshNodeProcess, model, ranges: '', stages: [] }
  try {
    for (let i = 0; i < k; i++) {
      const dataDir = mkdtempSync(join(tmpdir(), 'exo-bench-serve-'))
      cluster.dirs.push(dataDir)
      cluster.nodes.push(await startMeshNode({
        name: `k${k}s${i}`, dataDir, prefix: ['taskset', '-c', cpus[i % cpus.length]!],
        peers: i === 0 ? [] : [cluster.nodes[0]!.p2pAddr],
        extraArgs: ['--model', path, '--memory-budget', String(budgets[i]!), '--threads', '1', '--no-flash-attention', '--log-level', 'warn'],
        // one speed for every node: the plan is the balanced split the budgets allow, not whichever node's probe ran on a quieter moment
        env: { EXO_P2P_TEST_MS_PER_LAYER: '1' }
      }, 120_000))
    }
    const plan = await waitFor(`a ready ${k}-stage plan`, async () => {
      const states = await Promise.all(cluster.nodes.map(clusterState))
      const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : ''))
      return ids.size === 1 && !ids.has('') && states[0]!.plan!.stages.length === k ? states[0]!.plan! : undefined
    }, 300_000, 250)
    cluster.first = cluster.nodes.find((n) => n.name === plan.stages[0]!.name)!
    cluster.ranges = plan.stages.map((s) => `[${s.start}, ${s.end})`).join(' ')
    cluster.stages = plan.stages.map((s) => ({ start: s.start, end: s.end }))
    // warm-up: the first request through a node loads its tokenizer
    for (const n of cluster.nodes) await complete(n, model, 'Hello', 4, 1)
    return cluster
  } catch (err) {
    await stopCluster(cluster)
    throw err
  }
}

export async function stopCluster (c: Cluster): Promise<void> {
  await Promise.all(c.nodes.map(async (n) => { await stopProcess(n) }))
  for (const d of c.dirs) rmSync(d, { recursive: true, force: true })
}

export async function complete (node: MeshNodeProcess, model: string, prompt: string, maxTokens: number, seed: number): Promise<{ ms: number, tokens: number, text: string }> {
  const t0 = performance.now()
  const res = await fetch(`${node.httpUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // sampled (seeded) so a random model rarely stops early on its end-of-sequence token
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 1, top_p: 1, seed })
  })
  const body = await res.json() as { usage?: { completion_tokens: number }, choices?: Array<{ text: string }>, error?: unknown }
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body)}`)
  return { ms: performance.now() - t0, tokens: body.usage!.completion_tokens, text: body.choices![0]!.text }
}

/** Aggregate decode tok/s of n concurrent completions of `tokens` tokens (prefill of the short prompt included). */
export async function aggregate (c: Cluster, n: number, tokens: number, seed0: number): Promise<number> {
  const t0 = performance.now()
  const results = await Promise.all(Array.from({ length: n }, async (_, i) => await complete(c.first, c.model, `Once upon a time ${i}`, tokens, seed0 + i)))
  return results.reduce((a, r) => a + r.tokens, 0) / ((performance.now() - t0) / 1000)
}

/** ms to the first streamed token of a completion */
async function ttft (node: MeshNodeProcess, model: string, prompt: string, seed: number): Promise<{ ms: number, text: string }> {
  const t0 = performance.now()
  const res = await fetch(`${node.httpUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: 16, temperature: 1, seed, stream: true })
  })
  if (res.status !== 200 || res.body === null) throw new Error(`HTTP ${res.status}: ${await res.text()}`)
  let first = 0
  let text = ''
  const decoder = new TextDecoder()
  let buf = ''
  const reader = res.body.getReader()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    if (first === 0) first = performance.now() - t0
    buf += decoder.decode(value, { stream: true })
  }
  for (const line of buf.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue
    try { text += (JSON.parse(line.slice(6)) as { choices?: Array<{ text?: string }> }).choices?.[0]?.text ?? '' } catch { /* keep-alive */ }
  }
  return { ms: first, text }
}

/** A conversation of ~`words` words: TTFT of turn 1, then of turn 2 (turn 1 + its answer + a new line). */
export async function ttftTurns (c: Cluster, words: number, seed: number): Promise<{ turn1: number, turn2: number }> {
  const vocab = ['the', 'little', 'dog', 'ran', 'to', 'a', 'big', 'red', 'house', 'and', 'saw', 'cat', 'who', 'was', 'very', 'happy']
  const turn1 = `Conversation ${seed}: ` + Array.from({ length: words }, (_, i) => vocab[(i * 7 + seed) % vocab.length]).join(' ')
  const a = await ttft(c.first, c.model, turn1, seed)
  const b = await ttft(c.first, c.model, `${turn1}${a.text}\nAnd then`, seed)
  return { turn1: a.ms, turn2: b.ms }
}
