#!/usr/bin/env -S node --import tsx
/**
 * GPU check of the engine against node-llama-cpp's build of the same backend, on a machine with an NVIDIA GPU:
 * generates ~4 GB Q4_K and Q8_0 llamas (scripts/make-model.ts, one layer quantised and repeated; cached under
 * os.tmpdir()/exo-p2p-gpu-check), installs the CUDA packages when missing, then per model, every layer and the
 * output offloaded, both engines with the same threads and flash attention:
 *   - logits of a 64-token prompt and 8 greedy decode steps: max |diff| (expected 0: same kernels, same graph);
 *   - prefill tok/s (a 512-token prompt) and decode tok/s (64 tokens, interleaved blocks), medians of `--runs`;
 * and prints ONE JSON line: per model the numbers and ratios ours / node-llama-cpp, and the worst ratios.
 * Goal: ratios ≥ 0.95, max |diff| = 0. Budget: 8 minutes from a bare checkout with node_modules.
 *
 *   node --import tsx scripts/gpu-check.ts [--gpu cuda] [--tiny] [--runs 3] [--threads 4] [--device 0]
 *
 * `--gpu vulkan --tiny` runs the same checks on the bundled stories260k through ggml-vulkan (Mesa lavapipe with
 * GGML_VK_VISIBLE_DEVICES=0, set here when unset): a smoke test of the script on machines without an NVIDIA GPU.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { LlamaLogLevel, getLlama } from 'node-llama-cpp'
import type { Llama, LlamaModel, Token } from 'node-llama-cpp'
import { loadShard, readModelMetadata, selectComputeBackend } from '../src/engine/index.js'
import { findGgmlLibDir, ggmlPackageName, PINNED_VERSION } from '../src/engine/native/ggml-lib.js'
import type { GpuChoice, LoadedShard } from '../src/engine/index.js'
import { DEFAULTS, makeModel } from './make-model.js'
import type { MakeModelOptions } from './make-model.js'

const t0 = performance.now()
const log = (s: string): void => { process.stderr.write(`[gpu-check ${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}\n`) }
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }
const argmax = (a: Float32Array): number => { let b = 0; for (let i = 1; i < a.length; i++) if (a[i]! > a[b]!) b = i; return b }

/** a Llama-3-8B-shaped layer (4096, 32 heads, 8 KV heads, FFN 14336) with the 32000-token Llama 2 vocabulary */
const SHAPE = { embd: 4096, heads: 32, kvHeads: 8, ff: 14336 }
const MODELS: Array<Omit<MakeModelOptions, 'out' | 'vocabFrom' | 'seed' | 'context'> & { file: string }> = [
  { file: 'llama-32x4096-q4_k.gguf', type: 'q4_k', layers: 32, ...SHAPE }, // ≈ 4.1 GB
  { file: 'llama-16x4096-q8_0.gguf', type: 'q8_0', layers: 16, ...SHAPE } // ≈ 3.9 GB
]

function ensurePackages (gpu: GpuChoice): void {
  if (gpu === 'cpu' || gpu === 'auto' || findGgmlLibDir(gpu) !== undefined) return
  const pkgs = [ggmlPackageName(gpu), ...(gpu === 'cuda' ? [`${ggmlPackageName('cuda')}-ext`] : [])].map((p) => `${p}@${PINNED_VERSION}`)
  log(`installing ${pkgs.join(' ')} ...`)
  execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', ...pkgs], { stdio: 'inherit' })
}

function ensureModels (): string[] {
  const dir = join(tmpdir(), 'exo-p2p-gpu-check')
  mkdirSync(dir, { recursive: true })
  return MODELS.map((m) => {
    const path = join(dir, m.file)
    if (!existsSync(path)) {
      log(`generating ${path} ...`)
      makeModel({ ...DEFAULTS, ...m, out: path, reuseLayers: true })
    }
    return path
  })
}

interface Sides { ours: { shard: LoadedShard }, nlc: { model: LlamaModel } }

async function open (llama: Llama, path: string, threads: number, flashAttention: boolean): Promise<Sides> {
  const n = readModelMetadata(path).nLayers
  const shard = await loadShard({ modelPath: path, range: { start: 0, end: n }, threads, flashAttention, gpuLayers: n })
  const model = await llama.loadModel({ modelPath: path, gpuLayers: n + 1 })
  return { ours: { shard }, nlc: { model } }
}

function prompt (nVocab: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => i === 0 ? 1 : 1 + ((i * 7919) % (nVocab - 1)))
}

/** max |diff| of the logits of a prompt and `steps` greedy decode steps (node-llama-cpp's tokens fed to both) */
async function logitsDiff (s: Sides, threads: number, flashAttention: boolean, steps: number): Promise<number> {
  const meta = s.ours.shard.metadata
  const ctx = await s.nlc.model.createContext({ contextSize: 512, threads, flashAttention, sequences: 1 })
  const seq = ctx.getSequence()
  const session = s.ours.shard.createSession({ contextSize: 512 })
  let input = prompt(meta.nVocab, 64)
  let worst = 0
  try {
    for (let step = 0; step <= steps; step++) {
      const res = await seq.controlledEvaluate(input.map((t, i) => i === input.length - 1 ? [t as Token, { generateNext: { logits: true } }] : t as Token))
      const map = res[res.length - 1]!.next!.logits!
      const ref = new Float32Array(meta.nVocab)
      for (const [t, v] of map) ref[t] = v
      const o = await session.forward({ kind: 'tokens', tokens: Int32Array.from(input) })
      if (o.kind !== 'logits') throw new Error('expected logits')
      for (let i = 0; i < ref.length; i++) { const d = Math.abs(ref[i]! - o.logits[i]!); if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d }
      input = [argmax(ref)]
    }
  } finally {
    session.dispose()
    await ctx.dispose()
  }
  return worst
}

interface Speed { prefillOurs: number, prefillNlc: number, decodeOurs: number, decodeNlc: number }

async function speed (s: Sides, threads: number, flashAttention: boolean, runs: number, prefillTokens: number, decodeTokens: number): Promise<Speed> {
  const meta = s.ours.shard.metadata
  const contextSize = prefillTokens + decodeTokens + 8
  const ctx = await s.nlc.model.createContext({ contextSize, threads, flashAttention, sequences: 1, batchSize: 512 })
  const seq = ctx.getSequence()
  const p = prompt(meta.nVocab, prefillTokens)
  const r = { prefillOurs: [] as number[], prefillNlc: [] as number[], decodeOurs: [] as number[], decodeNlc: [] as number[] }
  const blocks = 4
  const block = Math.max(1, Math.floor(decodeTokens / blocks))
  try {
    // run 0 warms both up (kernel loading, CUDA graphs, cuBLAS handles) and is not counted
    for (let run = 0; run <= runs; run++) {
      await seq.clearHistory()
      let t = performance.now()
      const res = await seq.controlledEvaluate(p.map((x, i) => i === p.length - 1 ? [x as Token, { generateNext: { token: true } }] : x as Token))
      const prefillNlc = p.length / ((performance.now() - t) / 1000)
      let tok = res[res.length - 1]!.next!.token!
      const session = s.ours.shard.createSession({ contextSize })
      t = performance.now()
      let o = await session.forward({ kind: 'tokens', tokens: Int32Array.from(p) })
      const prefillOurs = p.length / ((performance.now() - t) / 1000)
      if (run > 0) { r.prefillNlc.push(prefillNlc); r.prefillOurs.push(prefillOurs) }
      for (let b = 0; b < blocks; b++) {
        t = performance.now()
        for (let i = 0; i < block; i++) tok = (await seq.controlledEvaluate([[tok, { generateNext: { token: true } }]]))[0]!.next!.token!
        const nlc = block / ((performance.now() - t) / 1000)
        t = performance.now()
        for (let i = 0; i < block; i++) {
          if (o.kind !== 'logits') throw new Error('expected logits')
          o = await session.forward({ kind: 'tokens', tokens: Int32Array.of(argmax(o.logits)) })
        }
        const ours = block / ((performance.now() - t) / 1000)
        if (run > 0) { r.decodeNlc.push(nlc); r.decodeOurs.push(ours) }
      }
      session.dispose()
    }
  } finally {
    await ctx.dispose()
  }
  return { prefillOurs: median(r.prefillOurs), prefillNlc: median(r.prefillNlc), decodeOurs: median(r.decodeOurs), decodeNlc: median(r.decodeNlc) }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      gpu: { type: 'string', default: 'cuda' }, tiny: { type: 'boolean', default: false }, runs: { type: 'string', default: '3' },
      threads: { type: 'string', default: String(Math.min(4, cpus().length)) }, device: { type: 'string', default: '0' },
      'no-flash-attention': { type: 'boolean', default: false }, model: { type: 'string', multiple: true }
    }
  })
  const gpu = values.gpu as GpuChoice
  if (gpu === 'vulkan') process.env.GGML_VK_VISIBLE_DEVICES ??= '0'
  const threads = Number(values.threads)
  const runs = Number(values.runs)
  const flashAttention = !values['no-flash-attention']
  ensurePackages(gpu)
  const backend = selectComputeBackend(gpu, Number(values.device))
  const device = backend.device!
  log(`${backend.backend} ${device.name}: ${device.description}, ${(device.freeBytes / 2 ** 30).toFixed(1)} of ${(device.totalBytes / 2 ** 30).toFixed(1)} GiB free`)
  const models = values.model ?? (values.tiny ? ['models/stories260k-f32.gguf'] : ensureModels())
  const llama = await getLlama({ gpu: gpu as 'cuda' | 'vulkan' | 'metal', build: 'never', logLevel: LlamaLogLevel.error })
  const results: Array<Speed & { model: string, maxAbsDiff: number, ratio_decode: number, ratio_prefill: number }> = []
  for (const path of models) {
    log(`${path}: loading both engines (every layer and the output on the device)`)
    const s = await open(llama, path, threads, flashAttention)
    try {
      const maxAbsDiff = await logitsDiff(s, threads, flashAttention, 8)
      log(`${path}: max |diff| = ${maxAbsDiff}`)
      const big = readModelMetadata(path).fileBytes > 1e8
      const sp = await speed(s, threads, flashAttention, runs, big ? 512 : 128, big ? 64 : 32)
      const r = { model: path, maxAbsDiff, ...sp, ratio_decode: sp.decodeOurs / sp.decodeNlc, ratio_prefill: sp.prefillOurs / sp.prefillNlc }
      log(`${path}: decode ${sp.decodeOurs.toFixed(1)} vs ${sp.decodeNlc.toFixed(1)} tok/s (×${r.ratio_decode.toFixed(3)}), prefill ${sp.prefillOurs.toFixed(0)} vs ${sp.prefillNlc.toFixed(0)} tok/s (×${r.ratio_prefill.toFixed(3)})`)
      results.push(r)
    } finally {
      await s.ours.shard.dispose()
      await s.nlc.model.dispose()
    }
  }
  const worst = (k: 'ratio_decode' | 'ratio_prefill'): number => Math.min(...results.map((r) => r[k]))
  process.stdout.write(JSON.stringify({
    backend: backend.backend, device: device.description, threads, flashAttention, runs,
    ratio_decode: worst('ratio_decode'), ratio_prefill: worst('ratio_prefill'), max_abs_diff: Math.max(...results.map((r) => r.maxAbsDiff)),
    seconds: Math.round((performance.now() - t0) / 1000), results
  }) + '\n')
  await llama.dispose()
}

await main()
