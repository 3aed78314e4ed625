#!/usr/bin/env -S node --import tsx
/**
 * Prefix reuse (issue 12 point 4): time to first token of turn 2 of a ~1,000-token conversation vs turn 1.
 * Turn 1 is a fresh ~1,000-token prompt (cold prefill); turn 2 is turn 1's prompt, its answer and a new
 * message, so only the new suffix is prefilled when the retained KV is reused. Each round starts a new
 * conversation (another first line, so no prefix is shared with earlier rounds); medians over the rounds.
 *
 *   npx tsx scripts/bench-prefix.ts [--model PATH] [--rounds 5] [--url http://127.0.0.1:52415] [--json]
 *   npx tsx scripts/bench-prefix.ts --retained 16 [--retained-tokens 1000] [--flash-attention] [--model PATH] [--rounds 3] [--json]
 *
 * --retained N: decode step time of a fresh request on one shard whose KV store holds N idle conversations of
 * --retained-tokens tokens each (retained KV kept for prefix reuse), vs a store holding none — with the store's
 * compaction on (idle pages move above the computing ones) and off (pages never move); the three take turns.
 * Default model: a generated 4-layer 512-wide q8_0 llama (1 thread, flash attention off unless --flash-attention).
 *
 * Without --url: one node in this process (LocalInferenceService, 1 thread, flash attention on, as nodes run).
 * With --url: a running node (any plan: one node or a pipeline of processes), OpenAI /v1/completions streamed.
 * `measurePrefixTtft` is exported for scripts/bench-serve.ts.
 */
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadShard, readModelMetadata } from '../src/engine/index.js'
import type { LoadedShard, ShardSession } from '../src/engine/index.js'
import { ggmlShardEngine } from '../src/node/ggml-shard-engine.js'
import { DEFAULTS, makeModel } from './make-model.js'
import { LocalInferenceService } from '../src/node/local-inference-service.js'
import { modelIdOfPath } from '../src/node/model-registry.js'
import { asModelId, asRequestId } from '../src/shared/ids.js'

export interface PrefixTtftOptions {
  /** GGUF path (in-process) — default the bundled stories260k */
  model?: string
  /** a running node's base URL instead of an in-process one */
  url?: string
  /** model id on that node (default: the file's id) */
  modelId?: string
  rounds?: number
  /** prompt words of turn 1 (≈ tokens on the bundled model) */
  words?: number
  /** tokens generated per turn */
  maxTokens?: number
}

export interface PrefixTtftResult {
  turn1Ms: number
  turn2Ms: number
  /** median turn-2 TTFT / median turn-1 TTFT (goal ≤ 0.3) */
  ttftTurn2VsTurn1: number
  promptTokensTurn1: number
  promptTokensTurn2: number
  rounds: number
}

const WORDS = 'the little girl saw a big red ball in the park and she ran to get it with her dog who liked to play all day long in the sun'.split(' ')

function story (round: number, words: number): string {
  const out = [`Story ${round + 1}: Once upon a time.`]
  for (let i = 0; i < words; i++) out.push(WORDS[(i * 7 + round * 3) % WORDS.length]!)
  return `${out.join(' ')}.`
}

type Turn = (prompt: string, id: string) => Promise<{ ttftMs: number, text: string, promptTokens: number }>

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** Runs `rounds` two-turn conversations and returns the median TTFTs. */
export async function measurePrefixTtft (o: PrefixTtftOptions = {}): Promise<PrefixTtftResult> {
  const model = o.model ?? fileURLToPath(new URL('../models/stories260k-f32.gguf', import.meta.url))
  const modelId = asModelId(o.modelId ?? modelIdOfPath(model))
  const maxTokens = o.maxTokens ?? 16
  let service: LocalInferenceService | undefined
  let turn: Turn
  if (o.url === undefined) {
    const local = new LocalInferenceService({ engine: ggmlShardEngine, threads: 1, modelPaths: [model] })
    service = local
    turn = async (prompt, id) => {
      const t0 = performance.now()
      let ttftMs = 0
      let text = ''
      for await (const e of local.generate({ id: asRequestId(id), model: modelId, prompt: { kind: 'text', text: prompt }, maxTokens, sampling: { temperature: 0 }, stop: [] }, { signal: AbortSignal.timeout(120_000) })) {
        if (e.type === 'token') { if (ttftMs === 0) ttftMs = performance.now() - t0; text += e.text } else return { ttftMs, text, promptTokens: e.usage.promptTokens }
      }
      throw new Error('no done event')
    }
  } else {
    const url = o.url
    turn = async (prompt) => await streamedTurn(url, modelId, prompt, maxTokens)
  }
  const t1: number[] = []
  const t2: number[] = []
  let p1 = 0
  let p2 = 0
  try {
    // warm-up: load the model, fill caches of the tokenizer and graphs
    await turn(story(999, 50), 'warmup')
    for (let r = 0; r < (o.rounds ?? 5); r++) {
      const first = story(r, o.words ?? 640)
      const a = await turn(first, `r${r}t1`)
      const b = await turn(`${first}${a.text} Then she went home and slept.`, `r${r}t2`)
      if (process.env.BENCH_VERBOSE !== undefined) console.error(`round ${r}: turn 1 ${a.ttftMs.toFixed(1)} ms, turn 2 ${b.ttftMs.toFixed(1)} ms`)
      t1.push(a.ttftMs)
      t2.push(b.ttftMs)
      p1 = a.promptTokens
      p2 = b.promptTokens
    }
  } finally {
    await service?.dispose()
  }
  const turn1Ms = median(t1)
  const turn2Ms = median(t2)
  return { turn1Ms, turn2Ms, ttftTurn2VsTurn1: turn2Ms / turn1Ms, promptTokensTurn1: p1, promptTokensTurn2: p2, rounds: t1.length }
}

async function streamedTurn (url: string, model: string, prompt: string, maxTokens: number): Promise<{ ttftMs: number, text: string, promptTokens: number }> {
  const t0 = performance.now()
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
    signal: AbortSignal.timeout(120_000)
  })
  if (res.status !== 200 || res.body === null) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`)
  let ttftMs = 0
  let text = ''
  let promptTokens = 0
  let buf = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += Buffer.from(chunk).toString('utf8')
    let i
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, i).replace(/^data: /, '')
      buf = buf.slice(i + 2)
      if (line === '[DONE]') return { ttftMs, text, promptTokens }
      const j = JSON.parse(line) as { choices?: Array<{ text?: string }>, usage?: { prompt_tokens: number } | null }
      const t = j.choices?.[0]?.text ?? ''
      if (t !== '' && ttftMs === 0) ttftMs = performance.now() - t0
      text += t
      if (j.usage != null) promptTokens = j.usage.prompt_tokens
    }
  }
  return { ttftMs, text, promptTokens }
}

export interface RetainedStepResult {
  retained: number
  retainedTokens: number
  /** median decode ms per token of a fresh request: no idle sequence; N idle, compaction off; N idle, compaction on */
  noneMs: number
  idleNoCompactionMs: number
  idleCompactionMs: number
}

const argmaxOf = (a: Float32Array): number => { let b = 0; for (let i = 1; i < a.length; i++) if (a[i]! > a[b]!) b = i; return b }

/** ms per decode step of a fresh 32-token prompt's `steps` greedy tokens on `shard` */
async function decodeMs (shard: LoadedShard, nVocab: number, steps: number, seed: number): Promise<number> {
  const s = shard.createSession({ contextSize: 4096 })
  try {
    let o = await s.forward({ kind: 'tokens', tokens: Int32Array.from({ length: 32 }, (_, i) => 1 + ((i * 7919 + seed * 131) % (nVocab - 1))) })
    const t0 = performance.now()
    for (let t = 0; t < steps; t++) {
      if (o.kind !== 'logits') throw new Error('expected logits')
      o = await s.forward({ kind: 'tokens', tokens: Int32Array.of(argmaxOf(o.logits)) })
    }
    return (performance.now() - t0) / steps
  } finally {
    s.dispose()
  }
}

/** Step time of a fresh request with `retained` idle conversations in the shard's KV store vs none, compaction on and off. */
export async function measureRetainedStep (o: { model?: string, retained: number, retainedTokens?: number, rounds?: number, steps?: number, flashAttention?: boolean }): Promise<RetainedStepResult> {
  const path = o.model ?? retainedBenchModel()
  const meta = readModelMetadata(path)
  const w = o.retainedTokens ?? 1000
  const steps = o.steps ?? 48
  const range = { start: 0, end: meta.nLayers }
  const load = async (kvCompaction: boolean): Promise<LoadedShard> => await loadShard({ modelPath: path, range, threads: 1, flashAttention: o.flashAttention === true, kvCompaction })
  const shards = { none: await load(true), off: await load(false), on: await load(true) }
  const idle: ShardSession[] = []
  const times = { none: [] as number[], off: [] as number[], on: [] as number[] }
  try {
    for (const shard of [shards.off, shards.on]) {
      for (let i = 0; i < o.retained; i++) {
        const s = shard.createSession({ contextSize: 4096 })
        idle.push(s)
        await s.forward({ kind: 'tokens', tokens: Int32Array.from({ length: w }, (_, j) => 1 + ((j * 104729 + i * 7919) % (meta.nVocab - 1))) })
      }
      // warm-up: the graphs, and (compaction on) the idle conversations go cold and move above
      await decodeMs(shard, meta.nVocab, 24, 0)
    }
    await decodeMs(shards.none, meta.nVocab, 24, 0)
    for (let r = 0; r < (o.rounds ?? 3); r++) {
      const order = (['none', 'off', 'on'] as const).map((_, i, a) => a[(i + r) % 3]!)
      for (const k of order) times[k].push(await decodeMs(shards[k], meta.nVocab, steps, r + 1))
      if (process.env.BENCH_VERBOSE !== undefined) console.error(`round ${r}: ${order.map((k) => `${k} ${times[k].at(-1)!.toFixed(2)} ms`).join(', ')}`)
    }
  } finally {
    for (const s of idle) s.dispose()
    for (const s of Object.values(shards)) await s.dispose()
  }
  return { retained: o.retained, retainedTokens: w, noneMs: median(times.none), idleNoCompactionMs: median(times.off), idleCompactionMs: median(times.on) }
}

function retainedBenchModel (): string {
  const dir = join(tmpdir(), 'exo-p2p-bench')
  mkdirSync(dir, { recursive: true })
  const out = join(dir, 'retained-4x512-q8_0.gguf')
  if (!existsSync(out)) makeModel({ ...DEFAULTS, layers: 4, embd: 512, heads: 8, kvHeads: 4, ff: 1408, type: 'q8_0', out, reuseLayers: true })
  return out
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { model: { type: 'string' }, url: { type: 'string' }, 'model-id': { type: 'string' }, rounds: { type: 'string' }, json: { type: 'boolean' }, retained: { type: 'string' }, 'retained-tokens': { type: 'string' }, 'flash-attention': { type: 'boolean' } } })
  if (values.retained !== undefined) {
    const r = await measureRetainedStep({
      retained: Number(values.retained),
      ...(values['retained-tokens'] !== undefined ? { retainedTokens: Number(values['retained-tokens']) } : {}),
      ...(values.model !== undefined ? { model: values.model } : {}),
      ...(values.rounds !== undefined ? { rounds: Number(values.rounds) } : {}),
      flashAttention: values['flash-attention'] === true
    })
    console.log(`decode step of a fresh request: ${r.noneMs.toFixed(2)} ms with no idle conversation in the KV store`)
    console.log(`  ${r.retained} idle conversations of ${r.retainedTokens} tokens, compaction off: ${r.idleNoCompactionMs.toFixed(2)} ms (${(r.idleNoCompactionMs / r.noneMs).toFixed(2)}×)`)
    console.log(`  ${r.retained} idle conversations of ${r.retainedTokens} tokens, compaction on:  ${r.idleCompactionMs.toFixed(2)} ms (${(r.idleCompactionMs / r.noneMs).toFixed(2)}×)`)
    if (values.json === true) console.log(JSON.stringify({ retained: r.retained, retained_tokens: r.retainedTokens, none_ms: r.noneMs, idle_no_compaction_ms: r.idleNoCompactionMs, idle_compaction_ms: r.idleCompactionMs }))
    process.exit(0)
  }
  const r = await measurePrefixTtft({
    ...(values.model !== undefined ? { model: values.model } : {}),
    ...(values.url !== undefined ? { url: values.url } : {}),
    ...(values['model-id'] !== undefined ? { modelId: values['model-id'] } : {}),
    ...(values.rounds !== undefined ? { rounds: Number(values.rounds) } : {})
  })
  console.log(`turn 1 (${r.promptTokensTurn1} prompt tokens, cold): TTFT ${r.turn1Ms.toFixed(1)} ms`)
  console.log(`turn 2 (${r.promptTokensTurn2} prompt tokens, prefix reused): TTFT ${r.turn2Ms.toFixed(1)} ms`)
  console.log(`turn 2 / turn 1: ${r.ttftTurn2VsTurn1.toFixed(3)} (goal ≤ 0.3), median of ${r.rounds} conversations`)
  if (values.json === true) console.log(JSON.stringify({ ttft_turn2_vs_turn1: r.ttftTurn2VsTurn1, turn1_ms: r.turn1Ms, turn2_ms: r.turn2Ms, prompt_tokens_turn1: r.promptTokensTurn1, prompt_tokens_turn2: r.promptTokensTurn2 }))
}
