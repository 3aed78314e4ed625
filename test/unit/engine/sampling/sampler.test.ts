import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { applyMinP, applyTopK, applyTopP, allCandidates, argmax, topIds } from '../../../../src/engine/sampling/candidates.js'
import { Prng } from '../../../../src/engine/sampling/prng.js'
import { applyPenalties, resolveSampling, Sampler } from '../../../../src/engine/sampling/sampler.js'
import { InvalidSamplingParamsError } from '../../../../src/shared/errors/generation-errors.js'
import type { SamplingParams } from '../../../../src/shared/inference.js'

function randomLogits (rng: Prng, n: number, scale = 4): Float32Array {
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = (rng.nextFloat() * 2 - 1) * scale
  return out
}

/** Reference: ids sorted by logit desc, id asc (full sort). */
function fullSort (logits: Float32Array): number[] {
  return Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b)
}

function softmax (logits: Float32Array, ids: number[]): number[] {
  const max = Math.max(...ids.map((i) => logits[i]!))
  const e = ids.map((i) => Math.exp(logits[i]! - max))
  const s = e.reduce((a, b) => a + b, 0)
  return e.map((x) => x / s)
}

describe('greedy', () => {
  test('temperature 0 returns the argmax for random logits, whatever the seed and filters', () => {
    const rng = new Prng(1)
    for (let trial = 0; trial < 50; trial++) {
      const logits = randomLogits(rng, 300)
      const expected = fullSort(logits)[0]
      const s = new Sampler({ temperature: 0, seed: trial, topK: 5, topP: 0.5, minP: 0.2 })
      assert.equal(s.sample(logits), expected)
    }
  })

  test('ties go to the lowest index', () => {
    assert.equal(argmax(new Float32Array([1, 3, 3, 2, 3])), 1)
    assert.equal(new Sampler({ temperature: 0 }).sample(new Float32Array([0, 0, 0])), 0)
    assert.deepEqual(Array.from(topIds(new Float32Array([1, 3, 3, 2, 3]), 3)), [1, 2, 4])
  })

  test('penalties apply before greedy', () => {
    const s = new Sampler({ temperature: 0, repeatPenalty: 4 })
    s.accept(0)
    assert.equal(s.sample(new Float32Array([2, 1, -1])), 1) // 2/4 = 0.5 < 1
  })
})

describe('penalties (llama.cpp semantics)', () => {
  const table: Array<{ name: string, logits: number[], recent: number[], p: { repeatPenalty: number, presencePenalty: number, frequencyPenalty: number }, want: number[] }> = [
    { name: 'repeat divides positive, multiplies negative', logits: [2, -2, 1], recent: [0, 1], p: { repeatPenalty: 2, presencePenalty: 0, frequencyPenalty: 0 }, want: [1, -4, 1] },
    { name: 'frequency scales with count', logits: [1, 1, 1], recent: [2, 2, 2, 0], p: { repeatPenalty: 1, presencePenalty: 0, frequencyPenalty: 0.5 }, want: [0.5, 1, -0.5] },
    { name: 'presence is once per token', logits: [1, 1, 1], recent: [2, 2, 0], p: { repeatPenalty: 1, presencePenalty: 0.25, frequencyPenalty: 0 }, want: [0.75, 1, 0.75] },
    { name: 'out-of-range tokens are ignored', logits: [1, 1], recent: [-1, 7], p: { repeatPenalty: 3, presencePenalty: 1, frequencyPenalty: 1 }, want: [1, 1] }
  ]
  for (const row of table) {
    test(row.name, () => {
      const l = Float32Array.from(row.logits)
      applyPenalties(l, row.recent, row.p)
      assert.deepEqual(Array.from(l), row.want)
    })
  }

  test('only the last penaltyLastN accepted tokens count', () => {
    const s = new Sampler({ temperature: 0, repeatPenalty: 100, penaltyLastN: 2 })
    for (const t of [0, 1, 2]) s.accept(t) // 0 fell out of the window
    assert.equal(s.sample(new Float32Array([1, 2, 3])), 0)
  })
})

describe('filters never pick excluded tokens', () => {
  const rng = new Prng(7)
  const cases: Array<{ name: string, params: SamplingParams, allowed: (logits: Float32Array) => Set<number> }> = [
    { name: 'top-k 3', params: { topK: 3, topP: 1, minP: 0 }, allowed: (l) => new Set(fullSort(l).slice(0, 3)) },
    {
      name: 'top-p 0.5',
      params: { topK: 0, topP: 0.5, minP: 0 },
      allowed: (l) => {
        const sorted = fullSort(l); const p = softmax(l, sorted); const keep = new Set<number>(); let cum = 0
        for (let i = 0; i < sorted.length; i++) { keep.add(sorted[i]!); cum += p[i]!; if (cum >= 0.5) break }
        return keep
      }
    },
    {
      name: 'min-p 0.3',
      params: { topK: 0, topP: 1, minP: 0.3 },
      allowed: (l) => { const max = Math.max(...l); return new Set(Array.from(l.keys()).filter((i) => l[i]! >= max + Math.log(0.3))) }
    }
  ]
  for (const c of cases) {
    test(c.name, () => {
      for (let trial = 0; trial < 20; trial++) {
        const logits = randomLogits(rng, 1000)
        const allowed = c.allowed(logits)
        const s = new Sampler({ ...c.params, temperature: 1.5, seed: trial })
        for (let i = 0; i < 20; i++) assert.ok(allowed.has(s.sample(logits)))
      }
    })
  }

  test('top-p without top-k keeps exactly the full-sort nucleus on a large vocabulary', () => {
    const logits = randomLogits(new Prng(3), 50_000, 8)
    for (const p of [0.1, 0.9, 0.999]) {
      const got = applyTopP(logits, allCandidates(logits.length), p)
      const sorted = fullSort(logits); const probs = softmax(logits, sorted)
      let cum = 0; let n = 0
      while (n < sorted.length) { cum += probs[n]!; n++; if (cum >= p) break }
      assert.deepEqual(Array.from(got.ids), sorted.slice(0, n))
    }
  })

  test('top-k ≤ 0 and top-p 1 and min-p 0 are no-ops', () => {
    const l = randomLogits(new Prng(9), 20)
    const c = allCandidates(20)
    assert.equal(applyTopK(l, c, 0), c)
    assert.equal(applyTopP(l, c, 1), c)
    assert.equal(applyMinP(l, c, 0), c)
  })
})

describe('randomness', () => {
  test('same seed ⇒ same tokens; another seed ⇒ another sequence', () => {
    const logits = randomLogits(new Prng(11), 500, 1)
    const run = (seed: number): number[] => { const s = new Sampler({ seed, topK: 0, topP: 1, minP: 0, temperature: 1 }); return Array.from({ length: 40 }, () => s.sample(logits)) }
    assert.deepEqual(run(42), run(42))
    assert.notDeepEqual(run(42), run(43))
  })

  test('draws follow softmax(logits / T)', () => {
    const s = new Sampler({ seed: 5, topK: 0, topP: 1, minP: 0, temperature: 2 })
    const logits = new Float32Array([0, 2 * Math.log(3)]) // at T=2: p = [0.25, 0.75]
    let ones = 0
    const n = 8000
    for (let i = 0; i < n; i++) ones += s.sample(logits)
    assert.ok(Math.abs(ones / n - 0.75) < 0.03, `frequency ${ones / n}`)
  })
})

describe('resolveSampling', () => {
  test('defaults are llama.cpp\'s', () => {
    const r = resolveSampling({ seed: 1 })
    assert.deepEqual({ ...r }, { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, penaltyLastN: 64, presencePenalty: 0, frequencyPenalty: 0, seed: 1 })
  })
  const bad: SamplingParams[] = [{ temperature: -1 }, { topK: 1.5 }, { topK: -1 }, { topP: 1.1 }, { minP: -0.1 }, { repeatPenalty: 0 }, { penaltyLastN: -1 }, { seed: 0.5 }, { temperature: NaN }, { topP: Infinity }]
  for (const p of bad) {
    test(`rejects ${JSON.stringify(p)}`, () => assert.throws(() => resolveSampling(p), InvalidSamplingParamsError))
  }
})

test('topIds equals a full sort (descending logit, lower id first) with ties and NaN, over all tokens or a subset', () => {
  const rng = new Prng(77)
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rng.nextFloat() * 300)
    // few distinct values: many ties; some NaN
    const logits = Float32Array.from({ length: n }, () => rng.nextFloat() < 0.05 ? NaN : Math.floor(rng.nextFloat() * 7) - 3)
    // a subset in shuffled order (candidate lists need not be sorted by id)
    const from = rng.nextFloat() < 0.5 ? undefined : Int32Array.from(Array.from({ length: n }, (_, i) => i).filter(() => rng.nextFloat() < 0.6).map((i) => [rng.nextFloat(), i] as const).sort((x, y) => x[0] - y[0]).map(([, i]) => i))
    const ids = Array.from(from ?? Array.from({ length: n }, (_, i) => i)).filter((i) => !Number.isNaN(logits[i]))
    const sorted = ids.sort((a, b) => logits[b]! - logits[a]! || a - b)
    for (const k of [1, 2, 5, 40, 1000]) assert.deepEqual(Array.from(topIds(logits, k, from)), sorted.slice(0, k), `trial ${trial}, k ${k}`)
  }
})
