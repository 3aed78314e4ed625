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

export interface Cluster { k: number, nodes: MeshNodeProcess[], dirs: string[], first: MeshNodeProcess, model: string }

/** Whole-MiB budget so that `k` nodes hold the model and fewer cannot (the planner's memory model, flash attention off as the nodes here run). */
function budgetMiB (path: string, k: number): number {
  const meta = readModelMetadata(path)
  const card = modelCardFromMetadata(modelIdOfPath(path), meta, meta.contextLength, false)
  const layer = card.layerBytes[0]! + card.kvBytesPerTokenPerLayer * card.contextSize + (card.layerOverheadBytes ?? 0)
  const stage = card.stageOverheadBytes ?? 0
  const whole = card.embeddingBytes + card.outputBytes + stage + card.nLayers * layer
  if (k === 1) return Math.ceil(whole / 2 ** 20) + 64
  return Math.ceil((Math.max(card.embeddingBytes, card.outputBytes) + stage + Math.ceil(card.nLayers / k) * layer) / 2 ** 20)
}

export async function startCluster (path: string, k: number, cpus: readonly string[]): Promise<Cluster> {
  const model = modelIdOfPath(path)
  const budget = String(budgetMiB(path, k))
  const cluster: Cluster = { k, nodes: [], dirs: [], first: undefined as unknown as MeshNodeProcess, model }
  try {
    for (let i = 0; i < k; i++) {
      const dataDir = mkdtempSync(join(tmpdir(), 'exo-bench-serve-'))
      cluster.dirs.push(dataDir)
      cluster.nodes.push(await startMeshNode({
        name: `k${k}s${i}`, dataDir, prefix: ['taskset', '-c', cpus[i % cpus.length]!],
        peers: i === 0 ? [] : [cluster.nodes[0]!.p2pAddr],
        extraArgs: ['--model', path, '--memory-budget', budget, '--threads', '1', '--no-flash-attention', '--log-level', 'warn']
      }, 120_000))
    }
    const plan = await waitFor(`a ready ${k}-stage plan`, async () => {
      const states = await Promise.all(cluster.nodes.map(clusterState))
      const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : ''))
      return ids.size === 1 && !ids.has('') && states[0]!.plan!.stages.length === k ? states[0]!.plan! : undefined
    }, 300_000, 250)
    cluster.first = cluster.nodes.find((n) => n.name === plan.stages[0]!.name)!
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
