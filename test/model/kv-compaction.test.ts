/**
 * Pages of the shared KV store move between steps (kv-compactor.ts): idle sequences go above the computing ones,
 * which go down to page 0. A sequence whose pages move mid-sequence gives exactly the logits of its solo run —
 * bit-identical, no tolerance: a step that computes one sequence runs the solo kernels (one row set), cells of
 * other sequences and free cells add exact zeros under the mask, its pages keep their order and 32-cell
 * alignment, and a move copies f16 → f32 → f16, which is exact.
 *
 * Scenario: B (a 300-token prompt) and C (260) prefill, then go idle; A prefills above them and decodes; after
 * HOT_STEPS steps B and C are cold, so A moves to the bottom and they to the top — mid-decode. Then B continues
 * (moving back down next to A) and must match its own solo continuation. Dense f32 (transposed V, and flash
 * attention: row V) and gemma3 with a sliding-window ring (both pools move). (A Vulkan store is left out: on main, a
 * Vulkan shard aborts in malloc when a 300-token prefill follows a decoded sequence, with or without compaction.)
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { join } from 'node:path'
import { loadShard, readModelMetadata } from '../../src/engine/index.js'
import { HOT_STEPS } from '../../src/engine/kv-compactor.js'
import { argmax } from './helpers/reference.js'
import { generatedModel } from './helpers/generated-models.js'
import type { BatchScheduler } from '../../src/engine/batch-scheduler.js'
import type { ShardSessionImpl } from '../../src/engine/shard-session.js'
import type { LoadedShard, ShardOptions, ShardSession } from '../../src/engine/index.js'

const ROOT = new URL('../../', import.meta.url).pathname
const A_STEPS = HOT_STEPS + 8
const B_STEPS = 6

const prompt = (n: number, seed: number, nVocab: number): Int32Array => Int32Array.from([1, ...Array.from({ length: n - 1 }, (_, i) => 2 + ((i * 7919 + seed * 104729) % (nVocab - 2)))])

/** `steps` greedy tokens fed back after `first` logits; every step's logits */
async function decode (s: ShardSession, first: Float32Array, steps: number): Promise<Float32Array[]> {
  const out: Float32Array[] = []
  let logits = first
  for (let t = 0; t < steps; t++) {
    const o = await s.forward({ kind: 'tokens', tokens: Int32Array.of(argmax(logits)) })
    assert.ok(o.kind === 'logits')
    out.push(o.logits)
    logits = o.logits
  }
  return out
}

async function prefill (s: ShardSession, p: Int32Array): Promise<Float32Array> {
  const o = await s.forward({ kind: 'tokens', tokens: p })
  assert.ok(o.kind === 'logits')
  return o.logits
}

function identical (name: string, got: Float32Array[], want: Float32Array[]): void {
  assert.equal(got.length, want.length)
  got.forEach((g, t) => {
    let bad = 0
    for (let i = 0; i < g.length; i++) if (!Object.is(g[i], want[t]![i])) bad++
    assert.equal(bad, 0, `${name} step ${t}: ${bad} of ${g.length} logits differ from the solo run`)
  })
}

type Opts = Pick<ShardOptions, 'flashAttention'>
const CASES: Array<[string, string, Opts]> = [
  ['stories260k f32', join(ROOT, 'models', 'stories260k-f32.gguf'), { flashAttention: false }],
  ['stories260k f32, flash attention', join(ROOT, 'models', 'stories260k-f32.gguf'), { flashAttention: true }],
  ['gemma3 swa=8 f16', generatedModel('f16', { arch: 'gemma3', layers: 4, archOptions: { swa: 8, pattern: 2 } }), { flashAttention: false }],
]

describe('KV store compaction', () => {
  for (const [name, path, opts] of CASES) {
    it(`${name}: sequences whose pages move mid-decode give their solo logits bit for bit`, async () => {
      const meta = readModelMetadata(path)
      const shard: LoadedShard = await loadShard({ modelPath: path, range: { start: 0, end: meta.nLayers }, threads: 1, ...opts })
      const scheduler = (shard as unknown as { scheduler: BatchScheduler }).scheduler
      try {
        const [pa, pb, pc] = [prompt(40, 1, meta.nVocab), prompt(300, 2, meta.nVocab), prompt(260, 3, meta.nVocab)]
        const solo = async (p: Int32Array, steps: number): Promise<Float32Array[]> => {
          const s = shard.createSession({ contextSize: 512 })
          try { return await decode(s, await prefill(s, p), steps) } finally { s.dispose() }
        }
        const soloA = await solo(pa, A_STEPS)
        const soloB = await solo(pb, B_STEPS)
        const moved0 = scheduler.kvStats.pagesMoved

        const b = shard.createSession({ contextSize: 512 }) as ShardSessionImpl
        const c = shard.createSession({ contextSize: 512 })
        const a = shard.createSession({ contextSize: 512 }) as ShardSessionImpl
        try {
          const firstB = await prefill(b, pb)
          await prefill(c, pc)
          const firstA = await prefill(a, pa)
          assert.ok(a.pages.pages[0]! >= 19, `A starts above B and C (page ${a.pages.pages[0]})`)
          identical('A', await decode(a, firstA, A_STEPS), soloA)
          assert.ok(scheduler.kvStats.pagesMoved > moved0, 'pages moved while A decoded')
          assert.equal(a.pages.pages[0], 0, 'A ends at the bottom of the store')
          assert.ok(b.pages.pages[0]! > a.pages.pages[a.pages.pages.length - 1]!, 'idle B above A')
          const movedA = scheduler.kvStats.pagesMoved
          identical('B', await decode(b, firstB, B_STEPS), soloB)
          assert.ok(scheduler.kvStats.pagesMoved > movedA, 'B moved back down when it computed again')
          // A and B in one step: each attends over its own pages (engine-batching checks such logits against solo runs)
          await Promise.all([a, b].map(async (s) => await s.forward({ kind: 'tokens', tokens: Int32Array.of(2) })))
          const spans = (scheduler as unknown as { graphs: { latest: { spans: string } } }).graphs.latest.spans
          assert.match(spans, /^1@0\+\d+,1@\d+\+\d+\|/, `per-sequence spans in a step of A and B, got '${spans}'`)
          console.log(`# ${name}: ${scheduler.kvStats.pagesMoved - moved0} pages moved in ${scheduler.kvStats.compactions} compactions; logits bit-identical`)
        } finally {
          for (const s of [a, b, c]) s.dispose()
        }
      } finally {
        await shard.dispose()
      }
    })
  }
})
