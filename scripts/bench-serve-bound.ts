/**
 * bench-serve's compute bound of a pipeline: what k stages could give over one node at n streams if nothing but
 * their graphs took time. One node runs a step of n rows over the whole model; each stage of the pipeline runs k
 * steps of ⌈n / k⌉ rows (one per group) in the time the ring takes for all n streams, so the slowest stage sets the
 * pace: bound = whole(n) / (k × max_i stage_i(⌈n / k⌉)). Every step's weights are read once whatever its rows, so
 * k groups read them k times: the bound falls short of k by how much of a step that read is.
 * In-process, 1 thread, the plan's own ranges; configurations interleaved, medians.
 */
import { loadShard, readModelMetadata } from '../src/engine/index.js'
import type { LoadedShard } from '../src/engine/index.js'

export interface ComputeBound {
  /** ms of one step of n rows over the whole model */
  wholeMs: number
  /** ms of one step of ⌈n / k⌉ rows of each stage */
  stageMs: number[]
  bound: number
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]! }

/** Median ms of a decode step of `rows` sequences (each at ~16 positions, like the bench's prompts) on `shard`. */
async function stepMs (shard: LoadedShard, rows: number, nEmbd: number, steps: number): Promise<number> {
  const sessions = Array.from({ length: rows }, () => shard.createSession({ contextSize: 64 }))
  try {
    // a first shard takes token ids, any other (1, nEmbd) f32 hidden states
    const input = (i: number): Parameters<typeof sessions[0]['forward']>[0] => shard.isFirst ? { kind: 'tokens', tokens: Int32Array.of(5 + i) } : { kind: 'hidden', hidden: new Float32Array(nEmbd).fill(0.01 * (i + 1)), nTokens: 1 }
    const all = async (): Promise<void> => { await Promise.all(sessions.map(async (s, i) => await s.forward(input(i), { logits: 'last' }))) }
    for (let w = 0; w < 16; w++) await all()
    const ts: number[] = []
    for (let t = 0; t < steps; t++) { const t0 = performance.now(); await all(); ts.push(performance.now() - t0) }
    return median(ts)
  } finally {
    for (const s of sessions) s.dispose()
  }
}

export async function computeBound (path: string, stages: ReadonlyArray<{ start: number, end: number }>, n: number, reps = 3): Promise<ComputeBound> {
  const meta = readModelMetadata(path)
  const k = stages.length
  const rows = Math.ceil(n / k)
  const ranges = [{ start: 0, end: meta.nLayers }, ...stages]
  const shards: LoadedShard[] = []
  try {
    for (const range of ranges) shards.push(await loadShard({ modelPath: path, range, threads: 1, flashAttention: false }))
    const runs: number[][] = ranges.map(() => [])
    for (let r = 0; r < reps; r++) {
      for (const [i, shard] of shards.entries()) runs[i]!.push(await stepMs(shard, i === 0 ? n : rows, meta.nEmbd, 24))
    }
    const [wholeMs, ...stageMs] = runs.map(median) as [number, ...number[]]
    return { wholeMs, stageMs, bound: wholeMs / (k * Math.max(...stageMs)) }
  } finally {
    for (const s of shards) await s.dispose()
  }
}
