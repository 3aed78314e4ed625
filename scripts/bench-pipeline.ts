#!/usr/bin/env -S node --import tsx
/**
 * Pipeline benchmark on 127.0.0.1: a generated random-weight llama (default ≈ 0.5 GB, Q8_0) served by
 * 1 node, by 2 and by 3 stage processes (each pinned with `taskset -c` to a core, 1 thread, memory
 * budgets that force the split), all up at once. The configurations take turns for `--rounds` rounds
 * of single-stream decoding (medians are reported, so a drift of the machine hits all alike); then
 * aggregate tok/s with 1, 4 and 8 concurrent streams. Prints ratios against 1 node, and per hop: the
 * end-to-end ms/token difference, and the first stage's ring time minus the other stages' own decode
 * passes (from the nodes' /metrics).
 *
 *   node --import tsx scripts/bench-pipeline.ts [--layers 36] [--embd 1024] [--ff 2816] [--tokens 48] [--rounds 5] [--stages 1,2,3] [--concurrency 1,4,8] [--cpus 0,1]
 */
import { mkdtempSync, mkdirSync, existsSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { makeModel, DEFAULTS } from './make-model.js'
import { readModelMetadata } from '../src/engine/index.js'
import { modelCardFromMetadata } from '../src/node/pipeline/model-card.js'
import { modelIdOfPath } from '../src/node/model-registry.js'
import { clusterState, metrics, startMeshNode, stopProcess, waitFor } from '../test/integration/helpers/mesh-node-process.js'
import type { MeshNodeProcess } from '../test/integration/helpers/mesh-node-process.js'

const { values } = parseArgs({
  options: {
    layers: { type: 'string' }, embd: { type: 'string' }, ff: { type: 'string' }, heads: { type: 'string' }, 'kv-heads': { type: 'string' },
    tokens: { type: 'string' }, rounds: { type: 'string' }, stages: { type: 'string' }, concurrency: { type: 'string' }, cpus: { type: 'string' }
  }
})
const int = (v: string | undefined, d: number): number => v === undefined ? d : Number.parseInt(v, 10)
const shape = { layers: int(values.layers, 36), embd: int(values.embd, 1024), ff: int(values.ff, 2816), heads: int(values.heads, 16), kvHeads: int(values['kv-heads'], 4) }
const TOKENS = int(values.tokens, 48)
const STAGES = (values.stages ?? '1,2,3').split(',').map(Number)
const CONCURRENCY = (values.concurrency ?? '1,4,8').split(',').map(Number)
/** cores the stage processes are pinned to, in order (stage i → CPUS[i mod length]); default every core */
const CPUS = values.cpus !== undefined ? values.cpus.split(',') : Array.from({ length: availableParallelism() }, (_, i) => String(i))
const PROMPT = 'The quick brown fox jumps over the lazy dog'

function modelPath (): string {
  const dir = join(tmpdir(), 'exo-p2p-bench')
  mkdirSync(dir, { recursive: true })
  const out = join(dir, `bench-${shape.layers}x${shape.embd}h${shape.heads}kv${shape.kvHeads}ff${shape.ff}-q8_0.gguf`)
  if (!existsSync(out)) {
    process.stderr.write(`generating ${out} …\n`)
    makeModel({ ...DEFAULTS, ...shape, type: 'q8_0', out, reuseLayers: true })
  }
  return out
}

/** Whole-MiB budget so that `k` nodes hold the model and fewer cannot (planner memory model). */
function budgetMiB (path: string, k: number): number {
  const meta = readModelMetadata(path)
  // nodes run with flash attention on (the default)
  const card = modelCardFromMetadata(modelIdOfPath(path), meta, meta.contextLength, true)
  const layer = card.layerBytes[0]! + card.kvBytesPerTokenPerLayer * card.contextSize + (card.layerOverheadBytes ?? 0)
  const stage = card.stageOverheadBytes ?? 0
  const whole = card.embeddingBytes + card.outputBytes + stage + card.nLayers * layer
  if (k === 1) return Math.ceil(whole / 2 ** 20) + 64
  return Math.ceil((Math.max(card.embeddingBytes, card.outputBytes) + stage + Math.ceil(card.nLayers / k) * layer) / 2 ** 20)
}

async function complete (node: MeshNodeProcess, model: string, maxTokens: number, seed: number): Promise<{ ms: number, tokens: number }> {
  const t0 = performance.now()
  const res = await fetch(`${node.httpUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // sampled (seeded) so a random model rarely stops early on its end-of-sequence token
    body: JSON.stringify({ model, prompt: PROMPT, max_tokens: maxTokens, temperature: 1, top_p: 1, seed })
  })
  const body = await res.json() as { usage?: { completion_tokens: number }, error?: unknown }
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body)}`)
  return { ms: performance.now() - t0, tokens: body.usage!.completion_tokens }
}

/** Seeds whose sampled completion runs the full TOKENS (a random model may sample its end-of-sequence token); found once, reused by every configuration (same logits → same tokens). */
const fullSeeds: number[] = []
async function seeds (node: MeshNodeProcess, model: string, n: number): Promise<number[]> {
  for (let seed = 1; fullSeeds.length < n && seed < 1000; seed++) {
    if (fullSeeds.includes(seed)) continue
    if ((await complete(node, model, TOKENS, seed)).tokens === TOKENS) fullSeeds.push(seed)
  }
  return fullSeeds.slice(0, n)
}

interface Cluster { k: number, nodes: MeshNodeProcess[], dirs: string[], first: MeshNodeProcess, model: string }

async function startCluster (path: string, k: number): Promise<Cluster> {
  const model = modelIdOfPath(path)
  const budget = String(budgetMiB(path, k))
  const dirs: string[] = []
  const nodes: MeshNodeProcess[] = []
  const cluster: Cluster = { k, nodes, dirs, first: undefined as unknown as MeshNodeProcess, model }
  try {
    for (let i = 0; i < k; i++) {
      const dataDir = mkdtempSync(join(tmpdir(), 'exo-bench-'))
      dirs.push(dataDir)
      nodes.push(await startMeshNode({
        name: `k${k}s${i}`, dataDir, prefix: ['taskset', '-c', CPUS[i % CPUS.length]!],
        peers: i === 0 ? [] : [nodes[0]!.p2pAddr],
        extraArgs: ['--model', path, '--memory-budget', budget, '--threads', '1', '--log-level', 'warn']
      }, 120_000))
    }
    const plan = await waitFor(`a ready ${k}-stage plan`, async () => {
      const states = await Promise.all(nodes.map(clusterState))
      const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : ''))
      return ids.size === 1 && !ids.has('') && states[0]!.plan!.stages.length === k ? states[0]!.plan! : undefined
    }, 300_000, 250)
    cluster.first = nodes.find((n) => n.name === plan.stages[0]!.name)!
    // warm-up of every node: the first request through a node loads its tokenizer (and the first stage's)
    for (const n of nodes) await complete(n, model, 8, 1)
    return cluster
  } catch (err) {
    await stopCluster(cluster)
    throw err
  }
}

async function stopCluster (c: Cluster): Promise<void> {
  await Promise.all(c.nodes.map(async (n) => { await stopProcess(n) }))
  for (const d of c.dirs) rmSync(d, { recursive: true, force: true })
}

/** ms per decoded token on one stream: a long request minus a 1-token one (prefill + HTTP) */
async function decodeMsPerToken (c: Cluster, seed: number): Promise<number> {
  const one = await complete(c.first, c.model, 1, seed)
  const long = await complete(c.first, c.model, TOKENS, seed)
  return (long.ms - one.ms) / (long.tokens - 1)
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2 }

/** Where a stream's token goes, from the nodes' own counters over a window: each stage's mean decode pass and stage 0's ring. */
async function breakdown (c: Cluster, before: Array<Map<string, number>>): Promise<{ text: string, hopMs: number }> {
  const after = await Promise.all(c.nodes.map(metrics))
  // histograms in seconds: mean ms = 1000 × Δ_sum / Δ_count
  const mean = (i: number, sum: string, count: string): number =>
    1000 * ((after[i]!.get(sum) ?? 0) - (before[i]!.get(sum) ?? 0)) / Math.max(1, (after[i]!.get(count) ?? 0) - (before[i]!.get(count) ?? 0))
  const decode = c.nodes.map((n, i) => {
    const role = n === c.first ? 'first' : 'stage'
    return mean(i, `exo_p2p_stage_decode_seconds_sum{role="${role}"}`, `exo_p2p_stage_decode_seconds_count{role="${role}"}`)
  })
  const ri = c.nodes.indexOf(c.first)
  const ring = mean(ri, 'exo_p2p_pipeline_ring_seconds_sum', 'exo_p2p_pipeline_ring_seconds_count')
  const others = decode.reduce((a, v, i) => i === ri ? a : a + v, 0)
  // the ring minus the other stages' layers: every hop's transport and handling, plus the last stage's sampling
  const hopMs = (ring - others) / c.k
  return { text: `decode pass ${c.nodes.map((n, i) => `${n.name} ${decode[i]!.toFixed(2)}`).join(', ')} ms; ring ${ring.toFixed(2)} ms → ${hopMs.toFixed(3)} ms per hop (incl. sampling)`, hopMs }
}

const path = modelPath()
const meta = readModelMetadata(path)
const ROUNDS = int(values.rounds, 5)
console.log(`model ${modelIdOfPath(path)}: ${(meta.fileBytes / 1e9).toFixed(2)} GB, ${meta.nLayers} layers, nEmbd ${meta.nEmbd}; stage i pinned to core [${CPUS.join(',')}][i mod ${CPUS.length}]; 1 thread each; ${TOKENS} tokens per request; ${ROUNDS} interleaved rounds`)
const clusters: Cluster[] = []
try {
  for (const k of STAGES) clusters.push(await startCluster(path, k))
  const s = await seeds(clusters[0]!.first, clusters[0]!.model, Math.max(ROUNDS, ...CONCURRENCY))
  // single stream: the configurations take turns, round after round, so slow drifts of the machine hit all alike
  const perToken = new Map<number, number[]>(clusters.map((c) => [c.k, []]))
  const before = await Promise.all(clusters.map(async (c) => await Promise.all(c.nodes.map(metrics))))
  for (let r = 0; r < ROUNDS; r++) {
    for (let j = 0; j < clusters.length; j++) {
      const c = clusters[(j + r) % clusters.length]!
      perToken.get(c.k)!.push(await decodeMsPerToken(c, s[r]!))
    }
  }
  const base = clusters.find((c) => c.k === 1)
  const baseMs = base !== undefined ? median(perToken.get(1)!) : undefined
  console.log('\nsingle stream (median of rounds):')
  for (const [ci, c] of clusters.entries()) {
    const ms = median(perToken.get(c.k)!)
    let line = `  ${c.k} stage(s): ${(1000 / ms).toFixed(2)} tok/s (${ms.toFixed(2)} ms/token; rounds ${perToken.get(c.k)!.map((v) => v.toFixed(1)).join(' ')})`
    if (c.k > 1) {
      const b = await breakdown(c, before[ci]!)
      line += `\n      ${b.text}`
      if (baseMs !== undefined) line += `\n      vs 1 node: ${(baseMs / ms).toFixed(3)}× · per-hop overhead end to end ${((ms - baseMs) / c.k).toFixed(3)} ms (ms/token difference / ${c.k} hops)`
    }
    console.log(line)
  }
  console.log('\naggregate tok/s (all streams together):')
  const agg = new Map<number, Map<number, number>>()
  for (const c of clusters) {
    const row = new Map<number, number>()
    for (const n of CONCURRENCY) {
      const t0 = performance.now()
      const results = await Promise.all(Array.from({ length: n }, async (_, i) => await complete(c.nodes[i % c.nodes.length]!, c.model, TOKENS, s[i]!)))
      row.set(n, results.reduce((a, r) => a + r.tokens, 0) / ((performance.now() - t0) / 1000))
    }
    agg.set(c.k, row)
    const b = agg.get(1)
    console.log(`  ${c.k} stage(s): ` + [...row].map(([n, v]) => `${n}×: ${v.toFixed(2)}${b !== undefined && c.k > 1 ? ` (${(v / b.get(n)!).toFixed(2)}× of 1 node)` : ''}`).join(', '))
  }
} finally {
  for (const c of clusters) await stopCluster(c)
}
