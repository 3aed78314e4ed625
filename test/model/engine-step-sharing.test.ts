/**
 * How the sequences of one shard share its steps: on one node (no pipeline), 8 streams whose callers come back at
 * slightly different times still run in one step of 8 (a sequence that missed a step rejoins the next instead of
 * getting a step of its own every round); a step whose forwards all borrow their output writes it to one buffer
 * reused from step to step (no per-step logits garbage on a last shard), with the same logits as owned outputs.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadShard, readModelMetadata } from '../../src/engine/index.js'
import type { BatchScheduler } from '../../src/engine/batch-scheduler.js'
import type { LoadedShard, ShardSession } from '../../src/engine/index.js'
import { argmax } from './helpers/reference.js'
import { generatedModel } from './helpers/generated-models.js'

const MODEL = generatedModel('q8_0')
const STEPS = 16
const stats = (shard: LoadedShard): BatchScheduler['stepStats'] => (shard as unknown as { scheduler: BatchScheduler }).scheduler.stepStats
const prompt = (i: number, nVocab: number): Int32Array => Int32Array.from([1, ...Array.from({ length: 6 }, (_, j) => 2 + ((i * 131 + j * 7919) % (nVocab - 2)))])

/**
 * Greedy decode of `sessions` concurrently; each caller waits `delayMs(i, step)` before it submits its next token
 * (step -1: before its prompt): ms, or 'turn' for one turn of the event loop (what an HTTP response write costs).
 */
async function decodeAll (sessions: ShardSession[], nVocab: number, delayMs: (i: number, s: number) => number | 'turn', borrow: boolean, steps = STEPS): Promise<Float32Array[][]> {
  return await Promise.all(sessions.map(async (x, i) => {
    const seen: Float32Array[] = []
    const d0 = delayMs(i, -1)
    if (d0 === 'turn') await new Promise((resolve) => { setImmediate(resolve) })
    else if (d0 > 0) await sleep(d0)
    let out = await x.forward({ kind: 'tokens', tokens: prompt(i, nVocab) }, { borrowOutput: borrow })
    for (let s = 0; s < steps; s++) {
      assert.ok(out.kind === 'logits')
      // a borrowed output is read before the event loop turns (here: copied)
      seen.push(Float32Array.from(out.logits))
      const next = argmax(out.logits)
      const d = delayMs(i, s)
      if (d === 'turn') await new Promise((resolve) => { setImmediate(resolve) })
      else if (d > 0) await sleep(d)
      out = await x.forward({ kind: 'tokens', tokens: Int32Array.of(next) }, { borrowOutput: borrow })
    }
    return seen
  }))
}

describe('step sharing on one shard', () => {
  it('8 streams on one node keep sharing one step when their callers come back at different times', async () => {
    const meta = readModelMetadata(MODEL)
    const shard = await loadShard({ modelPath: MODEL, range: { start: 0, end: meta.nLayers }, threads: 1 })
    try {
      const sessions = Array.from({ length: 8 }, () => shard.createSession({ contextSize: 128 }))
      const tokens = 48
      try {
        const before = { ...stats(shard) }
        // two arrive while the first six prefill, and the last caller comes back one event-loop turn late every step
        // (its HTTP response is written first, say): the two join the six at their first decode step, and a step waits
        // for the late one. (A wait is bounded by a step's time, ~1 ms on this small model: a caller later than that
        // would rightly be left out.)
        await decodeAll(sessions, meta.nVocab, (i, s) => s < 0 ? (i >= 6 ? 2 : 0) : i === 7 ? 'turn' : 0, false, tokens)
        const steps = stats(shard).steps - before.steps
        const perStep = (stats(shard).forwards - before.forwards) / steps
        console.log(`# 8 streams × ${tokens + 1} forwards: ${steps} steps, ${perStep.toFixed(2)} forwards per step`)
        // one step per token: 49, +1 for the two that started a step later, +1 for the last caller's last token alone;
        // a loaded machine may make a step miss the late caller now and then (+1 each, it rejoins the next). A fragment
        // that never rejoins takes 1.5 steps per token from then on (74 before the wait)
        assert.ok(steps <= 1.4 * (tokens + 1), `${steps} steps for ${tokens + 1} forwards of 8 streams`)
      } finally {
        for (const s of sessions) s.dispose()
      }
    } finally {
      await shard.dispose()
    }
  })

  it('borrowed outputs: one reused buffer, the same logits as owned ones; a step with an owner allocates', async () => {
    const meta = readModelMetadata(MODEL)
    const shard = await loadShard({ modelPath: MODEL, range: { start: 0, end: meta.nLayers }, threads: 1 })
    try {
      const run = async (borrow: boolean): Promise<Float32Array[][]> => {
        const sessions = Array.from({ length: 4 }, () => shard.createSession({ contextSize: 64 }))
        try { return await decodeAll(sessions, meta.nVocab, () => 0, borrow) } finally { for (const s of sessions) s.dispose() }
      }
      const owned = await run(false)
      const lent = await run(true)
      owned.forEach((seq, i) => seq.forEach((l, s) => { assert.deepEqual(lent[i]![s], l, `sequence ${i} step ${s}: borrowed logits differ`) }))

      const [a, b] = [shard.createSession({ contextSize: 64 }), shard.createSession({ contextSize: 64 })]
      try {
        const one = await Promise.all([a, b].map(async (x, i) => await x.forward({ kind: 'tokens', tokens: prompt(i, meta.nVocab) }, { borrowOutput: true })))
        const two = await Promise.all([a, b].map(async (x) => await x.forward({ kind: 'tokens', tokens: Int32Array.of(5) }, { borrowOutput: true })))
        assert.ok(one[0]!.kind === 'logits' && two[0]!.kind === 'logits' && two[1]!.kind === 'logits')
        assert.equal(two[0]!.logits.buffer, one[0]!.logits.buffer, 'a later step writes the same buffer')
        assert.equal(two[1]!.logits.buffer, two[0]!.logits.buffer, 'the step\'s sequences share it')
        // b owns its output: the step allocates, and a's borrowed rows stay where they were
        const three = await Promise.all([a.forward({ kind: 'tokens', tokens: Int32Array.of(6) }, { borrowOutput: true }), b.forward({ kind: 'tokens', tokens: Int32Array.of(6) })])
        assert.ok(three[0]!.kind === 'logits' && three[1]!.kind === 'logits')
        assert.notEqual(three[1]!.logits.buffer, one[0]!.logits.buffer)
        assert.notEqual(three[0]!.logits.buffer, one[0]!.logits.buffer)
      } finally {
        a.dispose()
        b.dispose()
      }
    } finally {
      await shard.dispose()
    }
  })
})

describe('graphs reused across steps', () => {
  it('a stage alternating between two groups reuses both graphs; a graph that grows the compute buffer retires the others; outputs equal solo runs', async () => {
    const meta = readModelMetadata(MODEL)
    const shard = await loadShard({ modelPath: MODEL, range: { start: 0, end: meta.nLayers }, threads: 1 })
    try {
      /** greedy tokens and logits of each step of one sequence alone */
      const solo = async (i: number, steps: number): Promise<Float32Array[]> => {
        const s = shard.createSession({ contextSize: 512 })
        try {
          const seen: Float32Array[] = []
          let out = await s.forward({ kind: 'tokens', tokens: prompt(i, meta.nVocab) })
          for (let t = 0; t < steps; t++) {
            assert.ok(out.kind === 'logits')
            seen.push(out.logits)
            out = await s.forward({ kind: 'tokens', tokens: Int32Array.of(argmax(out.logits)) })
          }
          return seen
        } finally { s.dispose() }
      }
      const want = await Promise.all([0, 1, 2, 3].map(async (i) => await solo(i, 12)))
      const sessions = [0, 1, 2, 3].map(() => shard.createSession({ contextSize: 512 }))
      const last: Array<Float32Array | undefined> = [undefined, undefined, undefined, undefined]
      const got: Float32Array[][] = [[], [], [], []]
      // groups {0, 1} and {2, 3} take turns, as the two groups of a 2-stage ring do on each stage
      const stepGroup = async (members: number[], depth: number): Promise<void> => {
        await Promise.all(members.map(async (i) => {
          const input = last[i] === undefined ? prompt(i, meta.nVocab) : Int32Array.of(argmax(last[i]!))
          const out = await sessions[i]!.forward({ kind: 'tokens', tokens: input }, { pipelineDepth: depth })
          assert.ok(out.kind === 'logits')
          last[i] = out.logits
          got[i]!.push(out.logits)
        }))
      }
      const scheduler = (shard as unknown as { scheduler: BatchScheduler }).scheduler
      try {
        // the KV store first grows to hold a long sequence (prefilled in small chunks: small compute buffers), so that
        // the long prefill below grows the compute buffer but not the store (whose new generation would retire every graph anyway)
        const warm = shard.createSession({ contextSize: 512 })
        try { for (let c = 0; c < 10; c++) await warm.forward({ kind: 'tokens', tokens: Int32Array.from({ length: 32 }, (_, j) => 2 + j + c) }) } finally { warm.dispose() }
        const built0 = stats(shard).graphs
        for (let t = 0; t < 6; t++) { await stepGroup([0, 1], 2); await stepGroup([2, 3], 2) }
        const built = stats(shard).graphs - built0
        console.log(`# 2 groups × 6 steps: ${built} graphs built`)
        // a prefill graph per group, then one decode graph per group (their spans stay on one page here)
        assert.ok(built <= 6, `${built} graphs built for 12 alternating steps`)
        // a 300-token prefill grows the compute buffer: the small graphs cached before must not run on the moved buffer
        const cells = scheduler.kvStats.cells
        const buffer = scheduler.allocator.bufferBytes().cpu
        const big = shard.createSession({ contextSize: 512 })
        try {
          await big.forward({ kind: 'tokens', tokens: Int32Array.from({ length: 300 }, (_, j) => 2 + ((j * 7919) % (meta.nVocab - 2))) })
        } finally { big.dispose() }
        assert.equal(scheduler.kvStats.cells, cells, 'the store did not grow')
        assert.ok(scheduler.allocator.bufferBytes().cpu > buffer, 'the compute buffer grew')
        const built1 = stats(shard).graphs
        for (let t = 0; t < 6; t++) { await stepGroup([0, 1], 2); await stepGroup([2, 3], 2) }
        assert.ok(stats(shard).graphs - built1 >= 2, 'the groups\' graphs were built again on the moved buffer')
      } finally {
        for (const s of sessions) s.dispose()
      }
      // each sequence's 13 outputs (prompt + 12 tokens): the first 12 compared with its solo run
      let worst = 0
      got.forEach((seq, i) => seq.slice(0, 12).forEach((l, t) => {
        const scale = Math.max(...want[i]![t]!.map(Math.abs))
        let d = 0
        for (let v = 0; v < l.length; v++) d = Math.max(d, Math.abs(l[v]! - want[i]![t]![v]!))
        assert.ok(d <= 1e-3 * scale, `sequence ${i} step ${t}: max |diff| ${d} > 1e-3 × ${scale}`)
        assert.equal(argmax(l), argmax(want[i]![t]!), `sequence ${i} step ${t}: greedy token`)
        worst = Math.max(worst, d)
      }))
      console.log(`# alternating groups with reused graphs vs solo: max |diff| = ${worst}`)
    } finally {
      await shard.dispose()
    }
  })
})
