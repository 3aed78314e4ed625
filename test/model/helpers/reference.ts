/**
 * Test helpers: node-llama-cpp as the reference (logits of the prompt's last token and of 30 greedy decode
 * steps), and our engine run as a pipeline of shards with hidden states passed through the tensor codec.
 */
import { LlamaLogLevel, getLlama } from 'node-llama-cpp'
import { decodeTensor, encodeTensor } from '../../../src/shared/tensor-codec.js'
import { loadShard } from '../../../src/engine/index.js'
import type { Llama, Token } from 'node-llama-cpp'
import type { LoadedShard, ShardOptions, ShardSession } from '../../../src/engine/index.js'

export interface Reference {
  /** prompt tokens followed by the greedy tokens fed back */
  steps: number[][]
  /** (nVocab) f32 per step */
  logits: Float32Array[]
}

let llamaPromise: Promise<Llama> | undefined
export function llama (): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error })
  return llamaPromise
}

export function argmax (a: Float32Array): number {
  let best = 0
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i
  return best
}

/** node-llama-cpp: the prompt, then `decodeSteps` greedy tokens; logits after each evaluation. */
export async function referenceLogits (modelPath: string, prompt: string | number[], decodeSteps: number, flashAttention: boolean, contextSize = 512,
  gpu?: { llama: Llama, gpuLayers: number }): Promise<Reference> {
  const l = gpu?.llama ?? await llama()
  const model = await l.loadModel({ modelPath, ...(gpu !== undefined ? { gpuLayers: gpu.gpuLayers } : {}) })
  try {
    const ctx = await model.createContext({ contextSize, threads: 1, flashAttention, sequences: 1 })
    const seq = ctx.getSequence()
    const tokens = typeof prompt === 'string' ? model.tokenize(prompt, true) as number[] : prompt
    const steps: number[][] = []
    const logits: Float32Array[] = []
    let input = tokens
    for (let s = 0; s <= decodeSteps; s++) {
      const res = await seq.controlledEvaluate(input.map((t, i) => i === input.length - 1 ? [t as Token, { generateNext: { logits: true } }] : t as Token))
      const map = res[res.length - 1]?.next?.logits
      if (map === undefined) throw new Error('node-llama-cpp returned no logits')
      const row = new Float32Array(map.size)
      for (const [t, v] of map) row[t] = v
      steps.push(input)
      logits.push(row)
      input = [argmax(row)]
    }
    await ctx.dispose()
    return { steps, logits }
  } finally {
    await model.dispose()
  }
}

/** Layer ranges for a split into `parts` contiguous shards. */
export function splitRanges (nLayers: number, parts: number): Array<{ start: number, end: number }> {
  const out: Array<{ start: number, end: number }> = []
  for (let i = 0; i < parts; i++) out.push({ start: Math.floor(i * nLayers / parts), end: Math.floor((i + 1) * nLayers / parts) })
  return out
}

export class Pipeline {
  private constructor (readonly shards: LoadedShard[], readonly sessions: ShardSession[]) {}

  static async load (modelPath: string, ranges: Array<{ start: number, end: number }>, flashAttention: boolean, contextSize = 512): Promise<Pipeline> {
    const shards: LoadedShard[] = []
    for (const range of ranges) shards.push(await loadShard({ modelPath, range, threads: 1, flashAttention }))
    return new Pipeline(shards, shards.map((s) => s.createSession({ contextSize })))
  }

  /** Shards with any engine options (e.g. gpuLayers); threads 1. */
  static async loadOptions (shards: Array<Omit<ShardOptions, 'threads'>>, contextSize = 512): Promise<Pipeline> {
    const loaded: LoadedShard[] = []
    for (const o of shards) loaded.push(await loadShard({ ...o, threads: 1 }))
    return new Pipeline(loaded, loaded.map((s) => s.createSession({ contextSize })))
  }

  /** Each shard from its own file (e.g. sparse copies that hold only that shard's tensors). */
  static async loadEach (shards: Array<{ modelPath: string, range: { start: number, end: number } }>, flashAttention: boolean, contextSize = 512): Promise<Pipeline> {
    const loaded: LoadedShard[] = []
    for (const { modelPath, range } of shards) loaded.push(await loadShard({ modelPath, range, threads: 1, flashAttention }))
    return new Pipeline(loaded, loaded.map((s) => s.createSession({ contextSize })))
  }

  /** Tokens in, last-token logits out; hidden states cross shard boundaries as encoded f32 tensors. */
  async forward (tokens: number[]): Promise<Float32Array> {
    let out = await this.sessions[0]!.forward({ kind: 'tokens', tokens: Int32Array.from(tokens) })
    for (let i = 1; i < this.sessions.length; i++) {
      if (out.kind !== 'hidden') throw new Error('expected hidden state')
      const nEmbd = this.shards[i]!.metadata.nEmbd
      const wire = encodeTensor([out.nTokens, nEmbd], out.hidden) // (t, nEmbd) f32
      const t = decodeTensor(wire)
      out = await this.sessions[i]!.forward({ kind: 'hidden', hidden: t.data, nTokens: t.shape[0]! })
    }
    if (out.kind !== 'logits') throw new Error('expected logits')
    return out.logits
  }

  async dispose (): Promise<void> {
    for (const s of this.sessions) s.dispose()
    for (const s of this.shards) await s.dispose()
  }
}

export function maxAbsDiff (a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity
  let d = 0
  for (let i = 0; i < a.length; i++) {
    const x = Math.abs(a[i]! - b[i]!)
    if (!(x <= d)) d = Number.isNaN(x) ? Infinity : x
  }
  return d
}

/** Runs the reference steps through a pipeline; returns the max |diff| over all steps. */
export async function compareWithReference (p: Pipeline, ref: Reference): Promise<number> {
  let worst = 0
  for (let s = 0; s < ref.steps.length; s++) {
    const logits = await p.forward(ref.steps[s]!)
    worst = Math.max(worst, maxAbsDiff(logits, ref.logits[s]!))
  }
  return worst
}
