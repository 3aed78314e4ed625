import assert from 'node:assert/strict'
import { test } from 'node:test'
import { plan } from '../../../src/planner/index.js'
import type { ModelCard, Plan, PlannerMember, PlannerView } from '../../../src/planner/index.js'
import { prng } from '../../helpers/prng.js'
import { MB, member, model, stageBytes } from './helpers.js'

/** Random clusters whose numbers lie exactly on the planner's quantisation grid (so a brute force can check it). */
function onGrid (rand: () => number, nNodes: number): { members: PlannerMember[], rtt: number[][] } {
  const members = Array.from({ length: nNodes }, (_, i) =>
    member(`peer-${String.fromCharCode(97 + Math.floor(rand() * 26))}${i}`, 5 + Math.floor(rand() * 120), Math.round(1.05 ** (200 + Math.floor(rand() * 100))) / 1e6))
  const rtt = members.map(() => members.map(() => 0))
  for (let i = 0; i < nNodes; i++) for (let j = i + 1; j < nNodes; j++) rtt[i]![j] = rtt[j]![i] = Math.floor(rand() * 5) * 0.5
  return { members, rtt }
}

function toView (members: PlannerMember[], rtt: number[][]): PlannerView {
  const rttMs: Record<string, Record<string, number>> = {}
  members.forEach((a, i) => { rttMs[a.peerId] = Object.fromEntries(members.flatMap((b, j) => (i === j ? [] : [[b.peerId, rtt[i]![j]!]]))) })
  return { members, rttMs }
}

function shuffled<T> (rand: () => number, xs: readonly T[]): T[] {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [out[i], out[j]] = [out[j]!, out[i]!] }
  return out
}

/** Minimal latency over every ordered node sequence and every split, computed independently. */
function bruteForce (members: PlannerMember[], rtt: number[][], m: ModelCard): number {
  const outLayers = m.outputBytes / m.layerBytes[0]!
  let best = Infinity
  const seq: number[] = []
  const splits = (k: number, n: number): number[][] => k === 1 ? [[n]] : Array.from({ length: n - k + 1 }, (_, i) => i + 1).flatMap((c) => splits(k - 1, n - c).map((r) => [c, ...r]))
  const visit = (): void => {
    if (seq.length > 0 && seq.length <= m.nLayers) {
      for (const counts of splits(seq.length, m.nLayers)) {
        let s = 0
        let lat = 0
        let ok = true
        counts.forEach((c, k) => {
          const node = members[seq[k]!]!
          if (stageBytes(m, s, s + c) > node.memoryBudgetBytes) ok = false
          lat += node.computeMsPerLayer * (c + (s + c === m.nLayers ? outLayers : 0))
          s += c
        })
        // a hop costs its RTT, at least 0.5 ms
        if (seq.length > 1) for (let k = 0; k < seq.length; k++) lat += Math.max(0.5, rtt[seq[k]!]![seq[(k + 1) % seq.length]!]!)
        if (ok) best = Math.min(best, lat)
      }
    }
    for (let i = 0; i < members.length; i++) {
      if (seq.includes(i)) continue
      seq.push(i); visit(); seq.pop()
    }
  }
  visit()
  return best
}

test('property: on-grid clusters — the plan is optimal (brute force) and permutation-invariant', () => {
  const rand = prng(2024)
  let plans = 0
  let splits = 0
  for (let trial = 0; trial < 150; trial++) {
    const nNodes = 1 + Math.floor(rand() * 5)
    const m = model(1 + Math.floor(rand() * 7))
    const { members, rtt } = onGrid(rand, nNodes)
    const p = plan(toView(members, rtt), m)
    const brute = bruteForce(members, rtt, m)
    if (p.kind === 'none') {
      assert.equal(brute, Infinity, `trial ${trial}: NoPlan but brute force found ${brute}: ${p.reason}`)
      continue
    }
    plans++
    if (p.stages.length > 1) splits++
    assert.ok(Math.abs(p.predictedMsPerToken - brute) <= 1e-9 * brute, `trial ${trial}: planner ${p.predictedMsPerToken} vs brute force ${brute}`)
    const sum = p.stages.reduce((a, s) => a + s.computeMs, 0) + p.ringRttMs
    assert.ok(Math.abs(sum - p.predictedMsPerToken) <= 1e-9 * brute, `trial ${trial}: stages + ring ${sum} ≠ ${p.predictedMsPerToken}`)
    // permutation of the members (and of the rtt table's keys) changes nothing
    const order = shuffled(rand, members.map((_, i) => i))
    const q = plan(toView(order.map((i) => members[i]!), order.map((i) => order.map((j) => rtt[i]![j]!))), m)
    assert.deepEqual(q, p, `trial ${trial}: permutation changed the plan`)
  }
  assert.ok(plans > 60 && splits > 15, `coverage: ${plans} plans, ${splits} splits`)
})

test('property: random clusters — memory never exceeded, never slower than any single node that fits', () => {
  const rand = prng(77)
  for (let trial = 0; trial < 150; trial++) {
    const nNodes = 1 + Math.floor(rand() * 6)
    const nLayers = 1 + Math.floor(rand() * 12)
    const m = model(nLayers, {
      layerBytes: Array.from({ length: nLayers }, () => Math.floor((5 + rand() * 20) * MB)),
      embeddingBytes: Math.floor(rand() * 30 * MB),
      outputBytes: Math.floor(rand() * 30 * MB),
      contextSize: 1 + Math.floor(rand() * 4096)
    })
    const members = Array.from({ length: nNodes }, (_, i) => member(`n${i}`, 1 + rand() * 200, 0.01 + rand() * 3))
    const rtt = members.map(() => members.map(() => rand() * 3))
    const v = toView(members, rtt)
    const p = plan(v, m)
    const singles = members.map((x) => plan(toView([x], [[0]]), m)).filter((s): s is Plan => s.kind === 'plan')
    if (p.kind === 'none') {
      assert.equal(singles.length, 0)
      continue
    }
    for (const s of p.stages) {
      const budget = members.find((x) => x.peerId === s.peerId)!.memoryBudgetBytes
      assert.ok(stageBytes(m, s.start, s.end) <= budget, `trial ${trial}: stage ${s.start}-${s.end} needs ${stageBytes(m, s.start, s.end)} > ${budget}`)
    }
    for (const s of singles) assert.ok(p.predictedMsPerToken <= s.predictedMsPerToken, `trial ${trial}: ${p.predictedMsPerToken} > single ${s.predictedMsPerToken}`)
  }
})

test('property: small jitter does not change the plan (with and without the previous plan)', () => {
  const rand = prng(5)
  let checked = 0
  for (let trial = 0; trial < 100; trial++) {
    const m = model(2 + Math.floor(rand() * 6))
    const { members, rtt } = onGrid(rand, 1 + Math.floor(rand() * 4))
    const p0 = plan(toView(members, rtt), m)
    if (p0.kind === 'none') continue
    checked++
    const noisy = members.map((x) => ({ ...x, computeMsPerLayer: x.computeMsPerLayer * (1 + (rand() - 0.5) * 0.004), memoryBudgetBytes: x.memoryBudgetBytes + Math.floor(rand() * 1000) }))
    const noisyRtt = rtt.map((row) => row.map((r) => Math.max(0, r + (rand() - 0.5) * 0.1)))
    assert.equal((plan(toView(noisy, noisyRtt), m) as Plan).id, p0.id, `trial ${trial}: sub-bucket jitter changed the plan`)
    // larger jitter (±4 % speed, ±0.6 ms RTT) is absorbed by hysteresis when the previous plan is known
    const rough = members.map((x) => ({ ...x, computeMsPerLayer: x.computeMsPerLayer * (1 + (rand() - 0.5) * 0.08) }))
    const roughRtt = rtt.map((row) => row.map((r) => Math.max(0, r + (rand() - 0.5) * 1.2)))
    const p1 = plan(toView(rough, roughRtt), m, p0)
    const singles = rough.map((x) => plan(toView([x], [[0]]), m)).filter((s): s is Plan => s.kind === 'plan')
    const bestSingle = Math.min(...singles.map((s) => s.predictedMsPerToken))
    // kept unless a single node became strictly faster (the hard rule wins over hysteresis)
    if (p1.kind === 'plan' && p1.id !== p0.id) assert.ok(p1.predictedMsPerToken <= bestSingle, `trial ${trial}`)
  }
  assert.ok(checked > 50)
})

test('larger clusters (heuristic path, 12 nodes) give valid, permutation-invariant plans quickly', () => {
  const rand = prng(9)
  const m = model(32)
  const members = Array.from({ length: 12 }, (_, i) => member(`big${i}`, 60 + rand() * 60, 0.2 + rand()))
  const rtt = members.map(() => members.map(() => 0.5 + rand()))
  const t0 = performance.now()
  const p = plan(toView(members, rtt), m)
  const ms = performance.now() - t0
  assert.equal(p.kind, 'plan')
  const q = plan(toView([...members].reverse(), [...rtt].reverse().map((r) => [...r].reverse())), m)
  assert.deepEqual(q, p)
  assert.ok(ms < 5000, `${ms} ms`)
})
