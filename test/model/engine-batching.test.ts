/**
 * Continuous batching in one shard: sequences run concurrently (one graph per step for all of them, prefill
 * chunks mixed with decode tokens) give the logits they give alone; a sequence joining mid-batch and one
 * cancelled mid-batch leave the others' greedy outputs unchanged. Dense (f32, q8_0), gemma3 (sliding-window
 * ring) and qwen3moe, whole and split into 2 shards (hidden states in between).
 *
 * Tolerance: a step of k sequences multiplies k rows at once, and ggml picks its kernel by the number of rows
 * (1 row: ggml_vec_dot with 4 × 8 accumulator lanes; ≥ 2 rows: llamafile's sgemm with one FMA accumulator per
 * element; repacked weights: gemm per 4 rows, gemv for the rest) — llama.cpp's own results change the same way
 * with the batch it is given. Bit-exactness with a solo run is therefore not defined; float rounding is: we
 * require max |diff| ≤ 1e-3 · max |logit| and the same greedy token at every step.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AbortedError } from '../../src/shared/errors/exo-error.js'
import { loadShard, readModelMetadata } from '../../src/engine/index.js'
import { argmax, maxAbsDiff, splitRanges } from './helpers/reference.js'
import { generatedModel } from './helpers/generated-models.js'
import type { LoadedShard, ShardSession } from '../../src/engine/index.js'

const STEPS = 12
const MODELS = [
  { name: 'stories260k f32', path: 'models/stories260k-f32.gguf' },
  { name: 'llama q8_0', path: generatedModel('q8_0') },
  { name: 'gemma3 swa=8 f16', path: generatedModel('f16', { arch: 'gemma3', layers: 4, archOptions: { swa: 8, pattern: 2 } }) },
  { name: 'qwen3moe f16', path: generatedModel('f16', { arch: 'qwen3moe', layers: 2, archOptions: { experts: 4, experts_used: 2, expert_ff: 64 } }) }
]

/** prompts of different lengths: one long enough to be prefilled in two chunks while the others decode */
function prompts (nVocab: number): number[][] {
  const p = (n: number, seed: number): number[] => [1, ...Array.from({ length: n - 1 }, (_, i) => 2 + ((i * 7919 + seed * 104729) % (nVocab - 2)))]
  return [p(5, 1), p(40, 2), p(300, 3), p(9, 4)]
}

interface Run { tokens: number[], logits: Float32Array[] }

/** Greedy: the prompt, then STEPS tokens fed back; the logits of every step. */
async function greedy (shards: LoadedShard[], prompt: number[], steps: number, opts: { signal?: AbortSignal, onStep?: (s: number) => Promise<void> } = {}): Promise<Run> {
  const sessions: ShardSession[] = shards.map((s) => s.createSession({ contextSize: 512 }))
  const run: Run = { tokens: [], logits: [] }
  try {
    let input = prompt
    for (let s = 0; s <= steps; s++) {
      await opts.onStep?.(s)
      let out = await sessions[0]!.forward({ kind: 'tokens', tokens: Int32Array.from(input) }, { ...(opts.signal !== undefined ? { signal: opts.signal } : {}) })
      for (let i = 1; i < sessions.length; i++) {
        assert.ok(out.kind === 'hidden')
        out = await sessions[i]!.forward({ kind: 'hidden', hidden: out.hidden, nTokens: out.nTokens }, { ...(opts.signal !== undefined ? { signal: opts.signal } : {}) })
      }
      assert.ok(out.kind === 'logits')
      run.logits.push(out.logits)
      input = [argmax(out.logits)]
      run.tokens.push(input[0]!)
    }
    return run
  } finally {
    for (const s of sessions) s.dispose()
  }
}

function compare (name: string, got: Run, want: Run): number {
  let worst = 0
  for (let s = 0; s < got.logits.length; s++) {
    const scale = Math.max(...want.logits[s]!.map(Math.abs))
    const d = maxAbsDiff(got.logits[s]!, want.logits[s]!)
    assert.ok(d <= 1e-3 * scale, `${name} step ${s}: max |diff| ${d} > 1e-3 × ${scale}`)
    worst = Math.max(worst, d)
  }
  assert.deepEqual(got.tokens, want.tokens.slice(0, got.tokens.length), `${name}: greedy tokens differ`)
  return worst
}

describe('continuous batching', () => {
  for (const m of MODELS) {
    it(`${m.name}: 4 concurrent sequences (prefill chunks + decode in one graph) match their solo runs, whole and in 2 shards`, async () => {
      const meta = readModelMetadata(m.path)
      const ps = prompts(meta.nVocab)
      for (const parts of [1, 2]) {
        const shards = await Promise.all(splitRanges(meta.nLayers, parts).map(async (range) => await loadShard({ modelPath: m.path, range, threads: 1 })))
        try {
          const solo: Run[] = []
          for (const p of ps) solo.push(await greedy(shards, p, STEPS))
          const batched = await Promise.all(ps.map(async (p) => await greedy(shards, p, STEPS)))
          let worst = 0
          batched.forEach((b, i) => { worst = Math.max(worst, compare(`${m.name} seq ${i}`, b, solo[i]!)) })
          console.log(`# ${m.name}, ${parts} shard(s): 4 batched sequences vs solo: max |diff| = ${worst}`)

          // a sequence joins at step 4, another is cancelled at step 3: the others' outputs are those of their solo runs
          const cancel = new AbortController()
          let joined: Promise<Run> | undefined
          const [a, b, c] = await Promise.allSettled([
            greedy(shards, ps[0]!, STEPS, { onStep: async (s) => { if (s === 4) joined = greedy(shards, ps[3]!, STEPS) } }),
            greedy(shards, ps[1]!, STEPS),
            greedy(shards, ps[2]!, STEPS, { signal: cancel.signal, onStep: async (s) => { if (s === 3) setImmediate(() => cancel.abort()) } })
          ])
          assert.ok(a.status === 'fulfilled' && b.status === 'fulfilled')
          assert.ok(c.status === 'rejected' && c.reason instanceof AbortedError, `the cancelled sequence fails with AbortedError, got ${c.status === 'rejected' ? String(c.reason) : 'success'}`)
          worst = Math.max(compare('seq 0 with a join', a.value, solo[0]!), compare('seq 1', b.value, solo[1]!), compare('joined seq 3', await joined!, solo[3]!))
          console.log(`# ${m.name}, ${parts} shard(s): join + cancel mid-batch: max |diff| = ${worst}`)
        } finally {
          for (const s of shards) await s.dispose()
        }
      }
    })
  }
})
