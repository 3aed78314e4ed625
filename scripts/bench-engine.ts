#!/usr/bin/env -S node --import tsx
/**
 * Decode and prefill tokens/s of our shard engine vs node-llama-cpp on the same GGUF, same threads and
 * flash-attention setting, alternating runs in one process; plus the RSS growth of loading half a model vs
 * the whole model (child processes). Models: the bundled stories260k, generated ~0.5 GB Q8_0 / Q4_K /
 * IQ4_XS llamas and a ~0.5 GB Q4_K qwen3moe (cached under os.tmpdir()/exo-p2p-bench).
 *
 *   node --import tsx scripts/bench-engine.ts [--threads 1] [--flash-attention] [--runs 3] [--json] [--model FILE ...]
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { LlamaLogLevel, getLlama } from 'node-llama-cpp'
import { loadShard, readModelMetadata } from '../src/engine/index.js'
import { DEFAULTS, makeModel } from './make-model.js'
import type { MakeModelOptions } from './make-model.js'
import type { Token } from 'node-llama-cpp'
import type { ForwardOutput } from '../src/engine/index.js'

const BENCH_DIR = join(tmpdir(), 'exo-p2p-bench')
const GENERATED: Array<Omit<MakeModelOptions, 'out' | 'vocabFrom' | 'seed' | 'context'> & { file: string }> = [
  { file: 'llama-8x2048-q8_0.gguf', type: 'q8_0', layers: 8, embd: 2048, heads: 16, kvHeads: 4, ff: 5632 },
  { file: 'llama-16x2048-q4_k.gguf', type: 'q4_k', layers: 16, embd: 2048, heads: 16, kvHeads: 4, ff: 5632 },
  { file: 'llama-18x2048-iq4_xs.gguf', type: 'iq4_xs', layers: 18, embd: 2048, heads: 16, kvHeads: 4, ff: 5632 },
  // a Qwen3-30B-A3B layer (n_embd 2048, 32 × 128 heads, 4 KV heads, experts 768 wide, 8 used) with 24 experts, 6 layers
  { file: 'qwen3moe-6x2048-e24u8-q4_k.gguf', type: 'q4_k', arch: 'qwen3moe', layers: 6, embd: 2048, heads: 32, kvHeads: 4, headDim: 128, ff: 6144, archOptions: { experts: 24, experts_used: 8, expert_ff: 768 } }
]

/** decode is measured in this many interleaved blocks per run */
const BLOCKS = 4
const out = (s: string): void => { process.stdout.write(s + '\n') }
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2 }
const argmax = (a: Float32Array): number => { let b = 0; for (let i = 1; i < a.length; i++) if (a[i]! > a[b]!) b = i; return b }
/** CPU ms of this process (all threads: both engines compute on worker threads) */
const cpuMs = (): number => { const c = process.cpuUsage(); return (c.user + c.system) / 1000 }
const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ')

function ensureModels (): string[] {
  mkdirSync(BENCH_DIR, { recursive: true })
  return GENERATED.map((g) => {
    const path = join(BENCH_DIR, g.file)
    if (!existsSync(path)) {
      out(`generating ${path} ...`)
      makeModel({ ...DEFAULTS, ...g, out: path, reuseLayers: true })
    }
    return path
  })
}

/** wall tok/s (median over the measured blocks) and CPU ms per token (over all of them), per side */
interface Side { decode: number, prefill: number, decodeCpuMs: number, prefillCpuMs: number }
interface Result { model: string, ours: Side, nlc: Side }

/** Times `fn` (which evaluates `tokens` tokens) into `into`: wall tok/s and CPU ms. */
async function timed (tokens: number, into: { tps: number[], cpu: number[], n: number }, fn: () => Promise<void>): Promise<void> {
  const c0 = cpuMs()
  const t0 = performance.now()
  await fn()
  into.tps.push(tokens / ((performance.now() - t0) / 1000))
  into.cpu.push(cpuMs() - c0)
  into.n += tokens
}

/**
 * Prefill and decode of both engines on one model. Both are warmed up first (one prefill and a block of decode,
 * not counted: node-llama-cpp reserves its buffers when its context is created, ours on the first forward). Then
 * every run prefills the prompt on each side and decodes in BLOCKS interleaved blocks, the side that goes first
 * alternating from run to run and block to block, so a drift of the machine's load hits both alike. Wall-clock
 * ratios are what a user sees; CPU time per token (this process's, which only the measured side uses at the time)
 * is far less sensitive to other processes taking the cores.
 */
async function benchModel (path: string, threads: number, flashAttention: boolean, runs: number): Promise<Result> {
  const meta = readModelMetadata(path)
  const big = meta.fileBytes > 50e6
  const decodeTokens = big ? 32 : 128
  const prefillTokens = big ? 128 : 256
  const contextSize = 512
  const prompt = [1]
  for (let i = 1; i < prefillTokens; i++) prompt.push(1 + ((i * 7919) % (meta.nVocab - 1)))
  const block = Math.max(1, Math.floor(decodeTokens / BLOCKS))

  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error })
  const model = await llama.loadModel({ modelPath: path })
  const ctx = await model.createContext({ contextSize, threads, flashAttention, sequences: 1 })
  const seq = ctx.getSequence()
  const shard = await loadShard({ modelPath: path, range: { start: 0, end: meta.nLayers }, threads, flashAttention })
  const acc = () => ({ tps: [] as number[], cpu: [] as number[], n: 0 })
  const r = { decodeOurs: acc(), decodeNlc: acc(), prefillOurs: acc(), prefillNlc: acc() }
  const skip = acc()
  try {
    for (let run = -1; run < runs; run++) {
      // run -1 warms both sides up and is not counted
      const m = run < 0 ? { decodeOurs: skip, decodeNlc: skip, prefillOurs: skip, prefillNlc: skip } : r
      await seq.clearHistory()
      const s = shard.createSession({ contextSize })
      let tok = 0
      let o: ForwardOutput | undefined
      const nlcPrefill = async (): Promise<void> => {
        await timed(prompt.length, m.prefillNlc, async () => {
          const res = await seq.controlledEvaluate(prompt.map((t, i) => i === prompt.length - 1 ? [t as Token, { generateNext: { token: true } }] : t as Token))
          tok = res[res.length - 1]!.next!.token!
        })
      }
      const oursPrefill = async (): Promise<void> => {
        await timed(prompt.length, m.prefillOurs, async () => { o = await s.forward({ kind: 'tokens', tokens: Int32Array.from(prompt) }) })
      }
      const nlcBlock = async (): Promise<void> => {
        await timed(block, m.decodeNlc, async () => {
          for (let i = 0; i < block; i++) tok = (await seq.controlledEvaluate([[tok as Token, { generateNext: { token: true } }]]))[0]!.next!.token!
        })
      }
      const oursBlock = async (): Promise<void> => {
        await timed(block, m.decodeOurs, async () => {
          for (let i = 0; i < block; i++) {
            if (o?.kind !== 'logits') throw new Error('expected logits')
            o = await s.forward({ kind: 'tokens', tokens: Int32Array.of(argmax(o.logits)) })
          }
        })
      }
      const nlcFirst = run % 2 === 0
      for (const f of nlcFirst ? [nlcPrefill, oursPrefill] : [oursPrefill, nlcPrefill]) await f()
      for (let b = 0; b < (run < 0 ? 1 : BLOCKS); b++) {
        for (const f of (b % 2 === 0) === nlcFirst ? [nlcBlock, oursBlock] : [oursBlock, nlcBlock]) await f()
      }
      s.dispose()
    }
  } finally {
    await shard.dispose()
    await ctx.dispose()
    await model.dispose()
  }
  const side = (d: typeof skip, p: typeof skip): Side => ({
    decode: median(d.tps), prefill: median(p.tps), decodeCpuMs: d.cpu.reduce((a, x) => a + x, 0) / d.n, prefillCpuMs: p.cpu.reduce((a, x) => a + x, 0) / p.n
  })
  return { model: path, ours: side(r.decodeOurs, r.prefillOurs), nlc: side(r.decodeNlc, r.prefillNlc) }
}

/** Child process: RSS growth (bytes) of loading layers [start, end) of `path`. */
async function rssProbe (path: string, start: number, end: number): Promise<void> {
  const meta = readModelMetadata(path)
  // load ggml and its CPU backend first (a tiny shard), so only the weights count
  await (await loadShard({ modelPath: 'models/stories260k-f32.gguf', range: { start: 0, end: 1 }, threads: 1 })).dispose()
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  const before = process.memoryUsage().rss
  const shard = await loadShard({ modelPath: path, range: { start, end: end === -1 ? meta.nLayers : end }, threads: 1 })
  gc?.()
  const after = process.memoryUsage().rss
  out(JSON.stringify({ rssGrowth: after - before, weightBytes: shard.weightBytes }))
  await shard.dispose()
}

function measureRss (path: string, start: number, end: number): { rssGrowth: number, weightBytes: number } {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), `--rss-probe=${start}:${end}:${path}`], { encoding: 'utf8', timeout: 300_000 })
  const line = r.stdout.trim().split('\n').pop() ?? ''
  try { return JSON.parse(line) } catch { throw new Error(`rss probe failed: ${r.stderr}`) }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string', default: '1' }, 'flash-attention': { type: 'boolean', default: false },
      runs: { type: 'string', default: '3' }, json: { type: 'boolean', default: false }, model: { type: 'string', multiple: true },
      'rss-probe': { type: 'string' }
    }
  })
  if (values['rss-probe'] !== undefined) {
    const [start, end, ...rest] = values['rss-probe'].split(':')
    await rssProbe(rest.join(':'), Number(start), Number(end))
    return
  }
  const threads = Number(values.threads)
  const runs = Number(values.runs)
  const fa = values['flash-attention']
  const models = values.model ?? ['models/stories260k-f32.gguf', ...ensureModels()]
  out(`threads ${threads}, flash attention ${fa}, ${runs} alternating runs per model after a warm-up (wall: medians; cpu: ms per token over all runs); load ${load()}`)
  const results: Result[] = []
  const line = (what: string, o: number, n: number, oc: number, nc: number): string =>
    `  ${what} ours ${o.toFixed(1)} tok/s  nlc ${n.toFixed(1)} tok/s  ratio ${(o / n).toFixed(2)}   cpu ours ${oc.toFixed(2)} ms/tok  nlc ${nc.toFixed(2)} ms/tok  ratio ${(nc / oc).toFixed(2)}`
  for (const m of models) {
    const r = await benchModel(m, threads, fa, runs)
    results.push(r)
    out(`${m} (load ${load()})\n${line('decode ', r.ours.decode, r.nlc.decode, r.ours.decodeCpuMs, r.nlc.decodeCpuMs)}\n${line('prefill', r.ours.prefill, r.nlc.prefill, r.ours.prefillCpuMs, r.nlc.prefillCpuMs)}`)
  }
  const largest = models.reduce((a, b) => readModelMetadata(b).fileBytes > readModelMetadata(a).fileBytes ? b : a)
  const meta = readModelMetadata(largest)
  const half = measureRss(largest, 0, Math.floor(meta.nLayers / 2))
  const whole = measureRss(largest, 0, -1)
  const rssRatio = half.rssGrowth / whole.rssGrowth
  out(`RSS growth on ${largest}: half [0, ${Math.floor(meta.nLayers / 2)}) ${(half.rssGrowth / 1e6).toFixed(0)} MB (weights ${(half.weightBytes / 1e6).toFixed(0)} MB), whole ${(whole.rssGrowth / 1e6).toFixed(0)} MB (weights ${(whole.weightBytes / 1e6).toFixed(0)} MB), ratio ${rssRatio.toFixed(2)}`)
  const big = results.find((r) => r.model === largest)!
  if (values.json) {
    // ratios > 1: ours faster (wall tok/s ours / nlc; cpu: nlc ms per token / ours)
    const ratios = (r: Result): Record<string, number> => ({
      decode: r.ours.decode / r.nlc.decode, prefill: r.ours.prefill / r.nlc.prefill, decode_cpu: r.nlc.decodeCpuMs / r.ours.decodeCpuMs, prefill_cpu: r.nlc.prefillCpuMs / r.ours.prefillCpuMs
    })
    out(JSON.stringify({
      model: largest, threads, flashAttention: fa, load: loadavg(),
      ratio_decode: big.ours.decode / big.nlc.decode, ratio_prefill: big.ours.prefill / big.nlc.prefill, rss_ratio_half_vs_whole: rssRatio,
      results: results.map((r) => ({ ...r, ratios: ratios(r) }))
    }))
  }
}

await main()
