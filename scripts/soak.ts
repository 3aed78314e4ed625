#!/usr/bin/env -S node --import tsx
/**
 * Soak: N concurrent streaming completions for T minutes against a 2-stage pipeline of real node
 * processes on 127.0.0.1 (the bundled model by default, memory budgets that force the split), requests
 * spread over both nodes' HTTP ports. Reports errors, p50 / p99 time to first token and inter-token
 * latency, and each process's resident memory: the baseline is taken after a warm-up under full load
 * (KV caches and buffers allocated), growth is the last sample against it. Goals: 0 errors, RSS growth
 * < 10 % on every process; exit 1 when one is missed. An HTTP 429 (a stage holds at most 16 sessions: more
 * streams than that are refused at once, by design) is not an error: it is counted apart and retried after 100 ms.
 *
 *   node --import tsx scripts/soak.ts [--streams 64] [--minutes 5] [--tokens 64] [--model PATH] [--warmup-s 20]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { modelIdOfPath } from '../src/node/model-registry.js'
import { clusterState, metrics, REPO_ROOT, startMeshNode, stopProcess, waitFor } from '../test/integration/helpers/mesh-node-process.js'
import type { MeshNodeProcess } from '../test/integration/helpers/mesh-node-process.js'
import { budgetForSplitMiB } from '../test/integration/helpers/split-budget.js'

const { values } = parseArgs({ options: { streams: { type: 'string' }, minutes: { type: 'string' }, tokens: { type: 'string' }, model: { type: 'string' }, 'warmup-s': { type: 'string' } } })
const STREAMS = Number(values.streams ?? 64)
const MINUTES = Number(values.minutes ?? 5)
const TOKENS = Number(values.tokens ?? 64)
const MODEL_PATH = values.model ?? join(REPO_ROOT, 'models', 'stories260k-f32.gguf')
const MODEL = modelIdOfPath(MODEL_PATH)
const WARMUP_MS = Number(values['warmup-s'] ?? Math.min(20, MINUTES * 6)) * 1000

const rssBytes = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) * 1024
}
const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]!
}

const dirs: string[] = []
const nodes: MeshNodeProcess[] = []
const budget = String(budgetForSplitMiB(MODEL_PATH, MODEL, 2).mib)
const start = async (name: string, peers: string[]): Promise<MeshNodeProcess> => {
  const dataDir = mkdtempSync(join(tmpdir(), `exo-soak-${name}-`))
  dirs.push(dataDir)
  return await startMeshNode({ name, dataDir, peers, extraArgs: ['--model', MODEL_PATH, '--memory-budget', budget, '--threads', '1', '--log-level', 'warn'] }, 120_000)
}

const ttft: number[] = []
const itl: number[] = []
const errors = new Map<string, number>()
let requests = 0
let tokens = 0
/** HTTP 429: admission refused (a stage at its session limit); not an error, reported on its own */
let refused = 0
const error = (kind: string): void => { errors.set(kind, (errors.get(kind) ?? 0) + 1) }

async function stream (node: MeshNodeProcess, seed: number, record: boolean): Promise<void> {
  const t0 = performance.now()
  let res: Response
  try {
    res = await fetch(`${node.httpUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: TOKENS, temperature: 0.8, seed, stream: true }),
      signal: AbortSignal.timeout(120_000)
    })
  } catch (err) { error(`connect: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name}`); return }
  if (res.status === 429) {
    // a stage at its session limit (16 per stage) refuses at once, by design: counted apart, retried after 100 ms
    refused++
    await res.body?.cancel()
    await new Promise((resolve) => setTimeout(resolve, 100))
    return
  }
  if (res.status !== 200) { error(`HTTP ${res.status}`); await res.body?.cancel(); return }
  let last: number | undefined
  let buf = ''
  let done = false
  try {
    const decoder = new TextDecoder()
    const reader = res.body!.getReader()
    for (;;) {
      const { value, done: end } = await reader.read()
      if (end) break
      buf += decoder.decode(value, { stream: true })
      let i: number
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i)
        buf = buf.slice(i + 2)
        const data = ev.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n')
        if (data === '[DONE]') { done = true; continue }
        if (data === '') continue
        const body = JSON.parse(data) as { choices?: Array<{ text?: string }>, error?: unknown }
        if (body.error !== undefined) { error('stream error event'); return }
        if ((body.choices?.[0]?.text ?? '') === '') continue
        const now = performance.now()
        if (record) {
          if (last === undefined) ttft.push(now - t0)
          else itl.push(now - last)
          tokens++
        }
        last = now
      }
    }
  } catch (err) { error(`stream dropped: ${(err as Error).message.slice(0, 60)}`); return }
  if (!done) { error('stream ended without [DONE]'); return }
  if (record) requests++
}

try {
  const a = await start('soak-a', [])
  nodes.push(a, await start('soak-b', [a.p2pAddr]))
  const plan = await waitFor('a ready 2-stage plan', async () => {
    const states = await Promise.all(nodes.map(clusterState))
    const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : ''))
    return ids.size === 1 && !ids.has('') && states[0]!.plan!.stages.length === 2 ? states[0]!.plan! : undefined
  }, 120_000, 250)
  console.log(`soak: ${MODEL} as ${plan.stages.map((s) => `${s.name}[${s.start},${s.end})`).join(' → ')}; ${STREAMS} streams × ${MINUTES} min, ${TOKENS} tokens each; warm-up ${WARMUP_MS / 1000} s`)
  const tStart = Date.now()
  const deadline = tStart + WARMUP_MS + MINUTES * 60_000
  let baseline: number[] | undefined
  let heapBase: number[] = []
  const samples: number[][] = []
  const sampler = setInterval(() => {
    const now = Date.now()
    if (baseline === undefined && now - tStart >= WARMUP_MS) {
      baseline = nodes.map((n) => rssBytes(n.proc.pid!))
      samples.push(baseline)
      void Promise.all(nodes.map(async (n) => (await metrics(n)).get('nodejs_heap_size_used_bytes') ?? 0)).then((h) => { heapBase = h })
    } else if (baseline !== undefined) samples.push(nodes.map((n) => rssBytes(n.proc.pid!)))
  }, 5000)
  let seed = 0
  await Promise.all(Array.from({ length: STREAMS }, async (_, w) => {
    while (Date.now() < deadline) await stream(nodes[w % nodes.length]!, ++seed, Date.now() - tStart >= WARMUP_MS)
  }))
  clearInterval(sampler)
  const final = nodes.map((n) => rssBytes(n.proc.pid!))
  const heapEnd = await Promise.all(nodes.map(async (n) => (await metrics(n)).get('nodejs_heap_size_used_bytes') ?? 0))
  const base = baseline ?? final
  const secs = (Date.now() - tStart - WARMUP_MS) / 1000
  const errCount = [...errors.values()].reduce((x, y) => x + y, 0)
  console.log(`requests ${requests} (${(requests / secs).toFixed(1)}/s), tokens ${tokens} (${(tokens / secs).toFixed(0)} tok/s), errors ${errCount}${errCount > 0 ? ` ${JSON.stringify(Object.fromEntries(errors))}` : ''}; refused (HTTP 429, stage session limit) ${refused}`)
  console.log(`time to first token p50 ${pct(ttft, 50).toFixed(1)} ms, p99 ${pct(ttft, 99).toFixed(1)} ms; inter-token p50 ${pct(itl, 50).toFixed(2)} ms, p99 ${pct(itl, 99).toFixed(2)} ms`)
  const growth = nodes.map((n, i) => {
    const g = (final[i]! - base[i]!) / base[i]!
    const peak = Math.max(...samples.map((s) => s[i]!), final[i]!)
    console.log(`RSS ${n.name}: ${(base[i]! / 2 ** 20).toFixed(1)} MiB after warm-up → ${(final[i]! / 2 ** 20).toFixed(1)} MiB at the end (${(g * 100).toFixed(1)} %, peak ${(peak / 2 ** 20).toFixed(1)} MiB); JS heap used ${((heapBase[i] ?? 0) / 2 ** 20).toFixed(1)} → ${(heapEnd[i]! / 2 ** 20).toFixed(1)} MiB`)
    return g
  })
  const ok = errCount === 0 && growth.every((g) => g < 0.1)
  console.log(ok ? 'goals met: 0 errors, RSS growth < 10 % on every process' : 'GOALS MISSED')
  process.exitCode = ok ? 0 : 1
} finally {
  await Promise.all(nodes.map(async (n) => { await stopProcess(n, 'SIGTERM') }))
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
}
