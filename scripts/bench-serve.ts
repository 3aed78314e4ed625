#!/usr/bin/env -S node --import tsx
/**
 * Serving many users: aggregate decode tok/s at 1, 4, 8 and 16 concurrent streams.
 * 1. Our engine (one shard = the whole model, every stream a session, continuous batching) vs node-llama-cpp
 *    with the same number of sequences in one context — same GGUF, threads and flash-attention setting,
 *    alternating blocks in one process (medians).
 * 2. Real node processes on 127.0.0.1: 1 node, 2- and 3-stage pipelines, each process pinned to one core
 *    (taskset), 1 thread; aggregate tok/s of N concurrent HTTP completions.
 * 3. Time to first token of a conversation's 2nd turn (≈ 1,000 tokens of history) vs its 1st, on one node.
 *
 *   node --import tsx scripts/bench-serve.ts [--json] [--layers 8] [--embd 1024] [--ff 2816] [--tokens 24]
 *     [--concurrency 1,4,8,16] [--rounds 3] [--stages 1,2,3] [--cpus 0,1] [--model FILE] [--skip-cluster] [--skip-engine]
 *
 * `--json`: the last line is one JSON object with ratio_vs_llamacpp (by concurrency), pipeline2_vs_node_at_8,
 * ttft_turn2_vs_turn1, pipeline2_compute_bound_at_8 (what the 2-stage plan's graphs alone would allow, bench-serve-bound.ts)
 * and the raw numbers.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { LlamaLogLevel, getLlama } from 'node-llama-cpp'
import type { LlamaContextSequence, Token } from 'node-llama-cpp'
import { loadShard, readModelMetadata } from '../src/engine/index.js'
import type { LoadedShard, ShardSession } from '../src/engine/index.js'
import { DEFAULTS, makeModel } from './make-model.js'
import { aggregate, startCluster, stopCluster, ttftTurns } from './bench-serve-cluster.js'
import type { Cluster } from './bench-serve-cluster.js'
import { computeBound } from './bench-serve-bound.js'
import type { ComputeBound } from './bench-serve-bound.js'

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false }, layers: { type: 'string' }, embd: { type: 'string' }, ff: { type: 'string' },
    tokens: { type: 'string' }, concurrency: { type: 'string' }, rounds: { type: 'string' }, stages: { type: 'string' },
    cpus: { type: 'string' }, model: { type: 'string' }, 'skip-cluster': { type: 'boolean', default: false }, 'skip-engine': { type: 'boolean', default: false }
  }
})
const int = (v: string | undefined, d: number): number => v === undefined ? d : Number.parseInt(v, 10)
const TOKENS = int(values.tokens, 24)
const ROUNDS = int(values.rounds, 3)
const CONCURRENCY = (values.concurrency ?? '1,4,8,16').split(',').map(Number)
const STAGES = (values.stages ?? '1,2,3').split(',').map(Number)
const CPUS = values.cpus !== undefined ? values.cpus.split(',') : Array.from({ length: availableParallelism() }, (_, i) => String(i))
const CONTEXT = 256
const say = (s: string): void => { if (!values.json) process.stdout.write(s + '\n'); else process.stderr.write(s + '\n') }
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2 }
const argmax = (a: Float32Array, off = 0, n = a.length): number => { let b = 0; for (let i = 1; i < n; i++) if (a[off + i]! > a[off + b]!) b = i; return b }

function modelPath (): string {
  if (values.model !== undefined) return values.model
  const shape = { layers: int(values.layers, 8), embd: int(values.embd, 1024), ff: int(values.ff, 2816), heads: 16, kvHeads: 4 }
  const dir = join(tmpdir(), 'exo-p2p-bench')
  mkdirSync(dir, { recursive: true })
  const out = join(dir, `serve-${shape.layers}x${shape.embd}ff${shape.ff}-q8_0.gguf`)
  if (!existsSync(out)) {
    say(`generating ${out} …`)
    makeModel({ ...DEFAULTS, ...shape, type: 'q8_0', out, reuseLayers: true })
  }
  return out
}

/** a distinct short prompt per stream */
const promptOf = (i: number, nVocab: number): number[] => [1, ...Array.from({ length: 7 }, (_, j) => 2 + ((i * 131 + j * 7919) % (nVocab - 2)))]

/** Ours: n sessions, prompts prefilled together, then `TOKENS` greedy steps each, all streams concurrently. */
async function oursTokPerS (shard: LoadedShard, n: number, nVocab: number): Promise<number> {
  const sessions: ShardSession[] = Array.from({ length: n }, () => shard.createSession({ contextSize: CONTEXT }))
  try {
    const first = await Promise.all(sessions.map(async (s, i) => await s.forward({ kind: 'tokens', tokens: Int32Array.from(promptOf(i, nVocab)) })))
    const t0 = performance.now()
    await Promise.all(sessions.map(async (s, i) => {
      let o = first[i]!
      for (let t = 0; t < TOKENS; t++) {
        if (o.kind !== 'logits') throw new Error('expected logits')
        o = await s.forward({ kind: 'tokens', tokens: Int32Array.of(argmax(o.logits)) })
      }
    }))
    return n * TOKENS / ((performance.now() - t0) / 1000)
  } finally {
    for (const s of sessions) s.dispose()
  }
}

/** node-llama-cpp: one context with n sequences; concurrent evaluations are batched into one llama_decode. */
async function nlcTokPerS (seqs: LlamaContextSequence[], nVocab: number): Promise<number> {
  const n = seqs.length
  await Promise.all(seqs.map(async (s) => { await s.clearHistory() }))
  const first = await Promise.all(seqs.map(async (s, i) => {
    const p = promptOf(i, nVocab)
    const r = await s.controlledEvaluate(p.map((t, j) => j === p.length - 1 ? [t as Token, { generateNext: { token: true } }] : t as Token))
    return r[r.length - 1]!.next!.token!
  }))
  const t0 = performance.now()
  await Promise.all(seqs.map(async (s, i) => {
    let tok = first[i]!
    for (let t = 0; t < TOKENS; t++) tok = (await s.controlledEvaluate([[tok, { generateNext: { token: true } }]]))[0]!.next!.token!
  }))
  return n * TOKENS / ((performance.now() - t0) / 1000)
}

async function engineVsLlamaCpp (path: string): Promise<Map<number, { ours: number, nlc: number }>> {
  const meta = readModelMetadata(path)
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error })
  const model = await llama.loadModel({ modelPath: path })
  const shard = await loadShard({ modelPath: path, range: { start: 0, end: meta.nLayers }, threads: 1, flashAttention: false })
  const out = new Map<number, { ours: number, nlc: number }>()
  try {
    for (const n of CONCURRENCY) {
      const ctx = await model.createContext({ contextSize: CONTEXT * n, sequences: n, threads: 1, flashAttention: false })
      const seqs = Array.from({ length: n }, () => ctx.getSequence())
      const ours: number[] = []
      const nlc: number[] = []
      try {
        for (let r = 0; r < ROUNDS; r++) {
          if (r % 2 === 0) { nlc.push(await nlcTokPerS(seqs, meta.nVocab)); ours.push(await oursTokPerS(shard, n, meta.nVocab)) } else { ours.push(await oursTokPerS(shard, n, meta.nVocab)); nlc.push(await nlcTokPerS(seqs, meta.nVocab)) }
        }
      } finally {
        for (const s of seqs) s.dispose()
        await ctx.dispose()
      }
      out.set(n, { ours: median(ours), nlc: median(nlc) })
      say(`  ${String(n).padStart(2)} streams: ours ${median(ours).toFixed(1)} tok/s, node-llama-cpp ${median(nlc).toFixed(1)} tok/s, ratio ${(median(ours) / median(nlc)).toFixed(2)}  (rounds ours ${ours.map((v) => v.toFixed(1)).join(' ')}; nlc ${nlc.map((v) => v.toFixed(1)).join(' ')})`)
    }
  } finally {
    await shard.dispose()
    await model.dispose()
  }
  return out
}

async function main (): Promise<void> {
  const path = modelPath()
  const meta = readModelMetadata(path)
  say(`model ${path}: ${(meta.fileBytes / 1e6).toFixed(0)} MB, ${meta.nLayers} layers, nEmbd ${meta.nEmbd}; 1 thread, flash attention off; ${TOKENS} decode tokens per stream; ${ROUNDS} alternating rounds (medians)`)
  say('\nengine, one process: ours vs node-llama-cpp (n sequences in one context)')
  const engine = values['skip-engine'] ? new Map<number, { ours: number, nlc: number }>() : await engineVsLlamaCpp(path)
  const pipes = new Map<number, Map<number, number>>()
  let ttft: { turn1: number, turn2: number } | undefined
  let plan2: Array<{ start: number, end: number }> | undefined
  if (!values['skip-cluster']) {
    say(`\nnode processes, stage i pinned to core [${CPUS.join(',')}][i mod ${CPUS.length}]: aggregate tok/s of N concurrent completions`)
    const clusters: Cluster[] = []
    try {
      for (const k of STAGES) clusters.push(await startCluster(path, k, CPUS))
      say('  plans: ' + clusters.map((c) => `${c.k} stage(s) ${c.ranges}`).join('; '))
      plan2 = clusters.find((c) => c.k === 2)?.stages
      for (const n of CONCURRENCY) {
        for (const [ci, c] of clusters.entries()) {
          const runs: number[] = []
          // the configurations take turns so a drift of the machine hits all alike
          for (let r = 0; r < Math.max(1, ROUNDS - 1); r++) runs.push(await aggregate(c, n, TOKENS, 1 + 100 * r + ci))
          const row = pipes.get(c.k) ?? new Map<number, number>()
          row.set(n, median(runs))
          pipes.set(c.k, row)
        }
        say(`  ${String(n).padStart(2)} streams: ` + clusters.map((c) => `${c.k} stage(s) ${pipes.get(c.k)!.get(n)!.toFixed(1)}`).join(', '))
      }
      const one = clusters.find((c) => c.k === 1)
      if (one !== undefined) {
        const t: Array<{ turn1: number, turn2: number }> = []
        for (let r = 0; r < ROUNDS; r++) t.push(await ttftTurns(one, 900, 1000 + r))
        ttft = { turn1: median(t.map((x) => x.turn1)), turn2: median(t.map((x) => x.turn2)) }
        say(`\nTTFT of a ~1,000-token conversation on 1 node: turn 1 ${ttft.turn1.toFixed(0)} ms, turn 2 ${ttft.turn2.toFixed(0)} ms, ratio ${(ttft.turn2 / ttft.turn1).toFixed(2)}`)
      }
    } finally {
      for (const c of clusters) await stopCluster(c)
    }
  }
  // what the 2-stage plan could give at 8 streams if only its graphs took time (bench-serve-bound.ts)
  let bound: ComputeBound | undefined
  if (plan2 !== undefined) {
    bound = await computeBound(path, plan2, 8)
    say(`\ncompute bound of the 2-stage plan at 8 streams: one node's step of 8 rows ${bound.wholeMs.toFixed(1)} ms; the stages' steps of 4 rows ${bound.stageMs.map((m) => m.toFixed(1)).join(' / ')} ms → at most ${bound.bound.toFixed(2)}× one node` +
      (pipes.get(1)?.get(8) !== undefined && pipes.get(2)?.get(8) !== undefined ? ` (measured ${(pipes.get(2)!.get(8)! / pipes.get(1)!.get(8)!).toFixed(2)}×)` : ''))
  }
  const ratio = Object.fromEntries([...engine].map(([n, r]) => [String(n), r.ours / r.nlc]))
  const p1 = pipes.get(1)?.get(8)
  const p2 = pipes.get(2)?.get(8)
  const result = {
    model: path,
    tokens: TOKENS,
    ratio_vs_llamacpp: ratio,
    pipeline2_vs_node_at_8: p1 !== undefined && p2 !== undefined ? p2 / p1 : null,
    ttft_turn2_vs_turn1: ttft !== undefined ? ttft.turn2 / ttft.turn1 : null,
    pipeline2_compute_bound_at_8: bound ?? null,
    engine: Object.fromEntries([...engine].map(([n, r]) => [String(n), r])),
    pipelines: Object.fromEntries([...pipes].map(([k, row]) => [String(k), Object.fromEntries([...row].map(([n, v]) => [String(n), v]))])),
    ttft_ms: ttft ?? null
  }
  if (values.json) process.stdout.write(JSON.stringify(result) + '\n')
}

await main()
