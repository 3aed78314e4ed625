#!/usr/bin/env -S node --import tsx
/**
 * Pipeline benchmark on 127.0.0.1: a generated random-weight llama (default ≈ 0.5 GB, Q8_0) served by
 * 1 node, then split over 2 and 3 stage processes (each pinned with `taskset -c` to a core, 1 thread,
 * memory budgets that force the split). Per configuration: single-stream decode tok/s, the per-hop
 * overhead, and aggregate tok/s with 1, 4 and 8 concurrent streams. Prints ratios against 1 node.
 *
 *   node --import tsx scripts/bench-pipeline.ts [--layers 36] [--embd 1024] [--ff 2816] [--tokens 48] [--stages 1,2,3] [--concurrency 1,4,8] [--cpus 0,1]
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
    tokens: { type: 'string' }, stages: { type: 'string' }, concurrency: { type: 'string' }, cpus: { type: 'string' }
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
  const card = modelCardFromMetadata(modelIdOfPath(path), meta, meta.contextLength)
  const layer = card.layerBytes[0]! + card.kvBytesPerTokenPerLayer * card.contextSize
  const whole = card.embeddingBytes + card.outputBytes + card.nLayers * layer
  if (k === 1) return Math.ceil(whole / 2 ** 20) + 64
  return Math.ceil((Math.max(card.embeddingBytes, card.outputBytes) + Math.ceil(card.nLayers / k) * layer) / 2 ** 20)
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

interface Row { stages: number, decodeTokS: number, msPerToken: number, hopMetricMs: number, aggregate: Map<number, number> }

async function runConfig (path: string, k: number): Promise<Row> {
  const model = modelIdOfPath(path)
  const budget = String(budgetMiB(path, k))
  const dirs: string[] = []
  const nodes: MeshNodeProcess[] = []
  try {
    for (let i = 0; i < k; i++) {
      const dataDir = mkdtempSync(join(tmpdir(), 'exo-bench-'))
      dirs.push(dataDir)
      nodes.push(await startMeshNode({
        name: `s${i}`, dataDir, prefix: ['taskset', '-c', CPUS[i % CPUS.length]!],
        peers: i === 0 ? [] : [nodes[0]!.p2pAddr],
        extraArgs: ['--model', path, '--memory-budget', budget, '--threads', '1', '--log-level', 'warn']
      }, 120_000))
    }
    const plan = await waitFor(`a ready ${k}-stage plan`, async () => {
      const states = await Promise.all(nodes.map(clusterState))
      const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : ''))
      return ids.size === 1 && !ids.has('') && states[0]!.plan!.stages.length === k ? states[0]!.plan! : undefined
    }, 300_000, 250)
    const first = nodes.find((n) => n.name === plan.stages[0]!.name)!
    // warm-up of every node: the first request through a node loads its tokenizer (and the first stage's)
    for (const n of nodes) await complete(n, model, 8, 1)
    const s = await seeds(first, model, Math.max(3, ...CONCURRENCY))
    // decode time per token: a long request minus a 1-token one (prefill + HTTP), best of 3
    let best = Infinity
    for (let r = 0; r < 3; r++) {
      const one = await complete(first, model, 1, s[r]!)
      const long = await complete(first, model, TOKENS, s[r]!)
      if (long.tokens > 1) best = Math.min(best, (long.ms - one.ms) / (long.tokens - 1))
    }
    const hopMetricMs = (await metrics(first)).get('exo_p2p_pipeline_hop_ms') ?? 0
    const aggregate = new Map<number, number>()
    for (const c of CONCURRENCY) {
      const t0 = performance.now()
      const results = await Promise.all(Array.from({ length: c }, async (_, i) => await complete(nodes[i % nodes.length]!, model, TOKENS, s[i]!)))
      aggregate.set(c, results.reduce((a, r) => a + r.tokens, 0) / ((performance.now() - t0) / 1000))
    }
    return { stages: k, decodeTokS: 1000 / best, msPerToken: best, hopMetricMs, aggregate }
  } finally {
    await Promise.all(nodes.map(async (n) => { await stopProcess(n) }))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }
}

const path = modelPath()
const meta = readModelMetadata(path)
console.log(`model ${modelIdOfPath(path)}: ${(meta.fileBytes / 1e9).toFixed(2)} GB, ${meta.nLayers} layers, nEmbd ${meta.nEmbd}; stage i pinned to core [${CPUS.join(',')}][i mod ${CPUS.length}]; 1 thread each; ${TOKENS} tokens per request`)
const rows: Row[] = []
for (const k of STAGES) {
  const row = await runConfig(path, k)
  rows.push(row)
  console.log(`${k} stage(s): ${row.decodeTokS.toFixed(2)} tok/s single stream (${row.msPerToken.toFixed(2)} ms/token); aggregate ${[...row.aggregate].map(([c, v]) => `${c}×: ${v.toFixed(2)}`).join(', ')} tok/s; hop metric ${row.hopMetricMs.toFixed(3)} ms`)
}
const base = rows.find((r) => r.stages === 1)
if (base !== undefined) {
  console.log('\nratios against 1 node:')
  for (const r of rows.filter((x) => x.stages > 1)) {
    const perHop = (r.msPerToken - base.msPerToken) / r.stages
    console.log(`  ${r.stages} stages: single-stream ${(r.decodeTokS / base.decodeTokS).toFixed(3)}× · per-hop overhead ${perHop.toFixed(3)} ms (ms/token difference / ${r.stages} hops) · ` +
      [...r.aggregate].map(([c, v]) => `${c} streams ${(v / (base.aggregate.get(c) ?? NaN)).toFixed(2)}×`).join(', '))
  }
}
