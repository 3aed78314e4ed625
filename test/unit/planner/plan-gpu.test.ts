import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { plan } from '../../../src/planner/index.js'
import type { ModelCard, Plan, PlannerMember, PlannerView } from '../../../src/planner/index.js'
import { MB, member, model, view } from './helpers.js'

/** Partial offload: every number here is computed independently of src/planner (cost-model.ts). */

function mustPlan (p: ReturnType<typeof plan>): Plan {
  if (p.kind !== 'plan') assert.fail(`expected a plan, got: ${p.reason}`)
  return p
}

const gpu = (m: PlannerMember, budgetMb: number, ms: number, maxLayers?: number): PlannerMember =>
  ({ ...m, device: { budgetBytes: budgetMb * MB, computeMsPerLayer: ms, ...(maxLayers !== undefined ? { maxLayers } : {}) } })

const kvOf = (m: ModelCard, i: number): number => m.kvBytesPerLayer?.[i] ?? m.kvBytesPerTokenPerLayer * m.contextSize
/** What one offloaded layer puts on the device: weights + KV + per-layer compute temporaries. */
const onDevice = (m: ModelCard, i: number): number => m.layerBytes[i]! + kvOf(m, i) + (m.layerOverheadBytes ?? 0)

/**
 * Layers of [s, e) a member offloads: the last ones, one at a time while they (and one compute buffer, and on the
 * last stage the output, which llama.cpp offloads first) fit.
 */
function offloaded (m: ModelCard, x: PlannerMember, s: number, e: number): number {
  const d = x.device
  if (d === undefined) return 0
  let k = 0
  let bytes = (m.stageOverheadBytes ?? 0) + (e === m.nLayers ? m.outputBytes : 0)
  while (k < e - s && k < (d.maxLayers ?? Infinity) && bytes + onDevice(m, e - 1 - k) <= d.budgetBytes) bytes += onDevice(m, e - 1 - k++)
  return k
}

function hostBytes (m: ModelCard, s: number, e: number, k: number): number {
  let b = (s === 0 ? m.embeddingBytes : 0) + (e === m.nLayers && k === 0 ? m.outputBytes : 0) + (m.stageOverheadBytes ?? 0)
  for (let i = s; i < e - k; i++) b += onDevice(m, i)
  return b
}

function deviceBytes (m: ModelCard, e: number, k: number): number {
  let b = k > 0 ? (m.stageOverheadBytes ?? 0) + (e === m.nLayers ? m.outputBytes : 0) : 0
  for (let i = e - k; i < e; i++) b += onDevice(m, i)
  return b
}

/** Checks every stage against the members' host and device budgets and the independent offload count. */
function assertWithinMemory (p: Plan, m: ModelCard, members: PlannerMember[], what: string): void {
  for (const s of p.stages) {
    const x = members.find((y) => y.peerId === s.peerId)!
    const k = offloaded(m, x, s.start, s.end)
    assert.equal(s.gpuLayers ?? 0, k, `${what}: stage ${s.start}-${s.end} offloads ${s.gpuLayers ?? 0}, expected ${k}`)
    assert.equal(s.memoryBytes, hostBytes(m, s.start, s.end, k), `${what}: host bytes`)
    assert.ok(s.memoryBytes <= x.memoryBudgetBytes, `${what}: host ${s.memoryBytes} > ${x.memoryBudgetBytes}`)
    assert.equal(s.deviceBytes ?? 0, deviceBytes(m, s.end, k), `${what}: device bytes`)
    assert.ok((s.deviceBytes ?? 0) <= (x.device?.budgetBytes ?? 0), `${what}: device ${s.deviceBytes ?? 0} > ${x.device?.budgetBytes ?? 0}`)
  }
}

/** Minimal predicted latency over every ordered node sequence and split (uniform layers: 1 layer = 1 unit). */
function bruteForce (members: PlannerMember[], rtt: number, m: ModelCard): number {
  const outLayers = m.outputBytes / m.layerBytes[0]!
  let best = Infinity
  const seq: number[] = []
  const go = (start: number): void => {
    if (start === m.nLayers) {
      let lat = 0
      let s = 0
      const ends = stageEnds
      ends.forEach((e, k) => {
        const x = members[seq[k]!]!
        const g = offloaded(m, x, s, e)
        const out = e === m.nLayers ? outLayers : 0
        lat += x.computeMsPerLayer * (e - s - g + (g === 0 ? out : 0)) + (x.device?.computeMsPerLayer ?? 0) * (g + (g > 0 ? out : 0))
        s = e
      })
      if (seq.length > 1) lat += seq.length * Math.max(0.5, rtt)
      best = Math.min(best, lat)
      return
    }
    for (let i = 0; i < members.length; i++) {
      if (seq.includes(i)) continue
      for (let e = start + 1; e <= m.nLayers; e++) {
        const x = members[i]!
        if (hostBytes(m, start, e, offloaded(m, x, start, e)) > x.memoryBudgetBytes) continue
        seq.push(i); stageEnds.push(e); go(e); seq.pop(); stageEnds.pop()
      }
    }
  }
  const stageEnds: number[] = []
  go(0)
  return best
}

/** Speeds on the planner's 5 % grid, so its quantisation does not blur the comparison. */
const gridMs = fc.integer({ min: 150, max: 300 }).map((b) => Math.round(1.05 ** b) / 1e6)
const clusterArb = fc.record({
  nLayers: fc.integer({ min: 2, max: 6 }),
  // sliding-window-like KV sizes per layer make the device bytes of layers differ
  kvMb: fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 6, maxLength: 6 }),
  stageOverheadMb: fc.integer({ min: 0, max: 6 }),
  members: fc.array(fc.record({
    hostMb: fc.integer({ min: 5, max: 70 }),
    ms: gridMs,
    device: fc.option(fc.record({ budgetMb: fc.integer({ min: 0, max: 80 }), ms: gridMs, maxLayers: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }) }), { nil: undefined })
  }), { minLength: 1, maxLength: 4 })
})

type Cluster = typeof clusterArb extends fc.Arbitrary<infer T> ? T : never

function build (c: Cluster): { m: ModelCard, members: PlannerMember[] } {
  const m = model(c.nLayers, { kvBytesPerLayer: c.kvMb.slice(0, c.nLayers).map((x) => x * MB), stageOverheadBytes: c.stageOverheadMb * MB, layerOverheadBytes: MB })
  const members = c.members.map((x, i) => {
    const cpu = member(`p${i}`, x.hostMb, x.ms)
    return x.device === undefined ? cpu : gpu(cpu, x.device.budgetMb, x.device.ms, x.device.maxLayers)
  })
  return { m, members }
}

/** Devices slower than their hosts: a longer stage can be cheaper (offloaded layers move back to the host), which the search's bound must allow. */
const slowDevice: Cluster = {
  nLayers: 4,
  kvMb: [0, 0, 0, 7, 0, 0],
  stageOverheadMb: 0,
  members: [
    { hostMb: 44, ms: 0.001508, device: { budgetMb: 11, ms: 0.003811, maxLayers: undefined } },
    { hostMb: 26, ms: 0.001508, device: { budgetMb: 22, ms: 0.001583, maxLayers: undefined } },
    { hostMb: 5, ms: 0.001508, device: undefined }
  ]
}

test('property: mixed GPU/CPU clusters — optimal (brute force), within host and device memory layer by layer, never slower than the best single node', () => {
  let splits = 0
  let offloads = 0
  fc.assert(fc.property(clusterArb, (c) => {
    const { m, members } = build(c)
    const v: PlannerView = view(members, 0.5)
    const p = plan(v, m)
    const brute = bruteForce(members, 0.5, m)
    if (p.kind === 'none') { assert.equal(brute, Infinity, p.reason); return }
    assert.ok(Math.abs(p.predictedMsPerToken - brute) <= 1e-9 * brute, `planner ${p.predictedMsPerToken} vs brute force ${brute}`)
    assertWithinMemory(p, m, members, 'plan')
    for (const x of members) {
      const single = plan(view([x]), m)
      if (single.kind === 'plan') assert.ok(p.predictedMsPerToken <= single.predictedMsPerToken, `${p.predictedMsPerToken} > single ${single.predictedMsPerToken}`)
    }
    // canonical order: reversing the members changes nothing (devices are part of the canonical input)
    assert.deepEqual(plan(view([...members].reverse(), 0.5), m), p)
    if (p.stages.length > 1) splits++
    if (p.stages.some((s) => (s.gpuLayers ?? 0) > 0)) offloads++
  }), { numRuns: 200, seed: 11, examples: [[slowDevice]] })
  assert.ok(splits > 20 && offloads > 40, `coverage: ${splits} splits, ${offloads} plans that offload`)
})

test('a GPU node\'s device memory is respected layer by layer: one byte less offloads one layer less', () => {
  const m = model(8, { stageOverheadBytes: 2 * MB, layerOverheadBytes: MB })
  const perLayer = 10 * MB + 1024 * 1024 + MB
  // 3 layers, the compute buffer and the output (4 MB: a single node runs the last layer)
  const exact = 3 * perLayer + 2 * MB + 4 * MB
  const fits3 = { ...member('g', 1000, 2), device: { budgetBytes: exact, computeMsPerLayer: 0.2 } }
  const p3 = mustPlan(plan(view([fits3]), m))
  assert.equal(p3.stages[0]!.gpuLayers, 3)
  assert.equal(p3.stages[0]!.deviceBytes, exact)
  assert.equal(p3.stages[0]!.memoryBytes, hostBytes(m, 0, 8, 3))
  // 2 ms × 5 host layers + 0.2 ms × (3 offloaded + 0.4 output)
  assert.ok(Math.abs(p3.predictedMsPerToken - (2 * 5 + 0.2 * 3.4)) < 0.05 * 10.7, String(p3.predictedMsPerToken))
  const p2 = mustPlan(plan(view([{ ...fits3, device: { ...fits3.device, budgetBytes: exact - 1 } }]), m))
  assert.equal(p2.stages[0]!.gpuLayers, 2)
  // a cap (--gpu-layers 1) wins over memory; a device without room for a layer and its compute buffer offloads nothing
  assert.equal(mustPlan(plan(view([{ ...fits3, device: { ...fits3.device, maxLayers: 1 } }]), m)).stages[0]!.gpuLayers, 1)
  assert.equal(mustPlan(plan(view([{ ...fits3, device: { ...fits3.device, budgetBytes: perLayer + 5 * MB } }]), m)).stages[0]!.gpuLayers, undefined)
  // the output alone, without a layer, is not offloaded: the host keeps it
  const none = mustPlan(plan(view([{ ...fits3, device: { ...fits3.device, budgetBytes: 6 * MB } }]), m)).stages[0]!
  assert.deepEqual([none.gpuLayers, none.deviceBytes, none.memoryBytes], [undefined, undefined, hostBytes(m, 0, 8, 0)])
})

test('a GPU node takes more layers than an equal CPU node; the offloaded layers are the last of its stage', () => {
  const m = model(10)
  // each host holds about 6 of the 10 layers (11 MB each with KV): neither runs the model alone on its CPU
  const cpu = member('a', 70, 1)
  const withGpu = gpu(member('b', 70, 1), 40, 0.1)
  const p = mustPlan(plan(view([cpu, withGpu], 0.5), m))
  assert.equal(p.stages.length, 2)
  const g = p.stages.find((s) => s.peerId === withGpu.peerId)!
  const c = p.stages.find((s) => s.peerId === cpu.peerId)!
  assert.ok(g.end - g.start > c.end - c.start, `GPU stage ${g.start}-${g.end}, CPU stage ${c.start}-${c.end}`)
  assert.equal(g.gpuLayers, offloaded(m, withGpu, g.start, g.end))
  assert.ok((g.gpuLayers ?? 0) >= 3)
  assert.equal(c.gpuLayers, undefined)
  assertWithinMemory(p, m, [cpu, withGpu], 'two nodes')
  // the same two nodes without the GPU split evenly
  const even = mustPlan(plan(view([cpu, member('b', 70, 1)], 0.5), m))
  assert.deepEqual(even.stages.map((s) => s.end - s.start), [5, 5])
})

test('CPU-only clusters plan exactly as before devices existed (same plan id); a device that offers nothing changes nothing', () => {
  const m = model(12, { stageOverheadBytes: 3 * MB, layerOverheadBytes: MB })
  const members = [member('a', 70, 1.3), member('b', 90, 0.7), member('c', 40, 0.9)]
  const p = mustPlan(plan(view(members, 0.7), m))
  // computed by the planner before this change (main at 0ed4176…)
  assert.equal(p.id, '0ed417695edb7c7baad1b4c9ab07678a38abd5aa9a21935914f2c7a2a2b9cde1')
  assert.deepEqual(p.stages.map((s) => [s.peerId, s.start, s.end, s.memoryBytes]), [['a', 0, 3, 45088768], ['b', 3, 10, 91226112], ['c', 10, 12, 32505856]])
  assert.ok(p.stages.every((s) => s.gpuLayers === undefined && s.deviceBytes === undefined))
  const idle = [gpu(members[0]!, 0.5, 0.1), gpu(members[1]!, 500, 0.1, 0), members[2]!]
  assert.deepEqual(plan(view(idle, 0.7), m), p)
})

test('hysteresis keeps a plan only while its stages would offload the same layers', () => {
  const m = model(10)
  const members = [member('a', 70, 1), gpu(member('b', 70, 1), 40, 0.1)]
  const p = mustPlan(plan(view(members, 0.5), m))
  assert.equal(plan(view(members, 0.5), m, p), p)
  // the device's budget shrinks: the stage would offload less than the previous plan says, so it is replanned
  const smaller = [members[0]!, gpu(member('b', 70, 1), 25, 0.1)]
  const q = mustPlan(plan(view(smaller, 0.5), m, p))
  assert.notEqual(q.id, p.id)
  assertWithinMemory(q, m, smaller, 'replanned')
})

test('larger mixed clusters (heuristic path, 12 nodes): within memory, permutation-invariant, no slower than any single node', () => {
  const m = model(32, { stageOverheadBytes: 2 * MB, layerOverheadBytes: MB })
  const members = Array.from({ length: 12 }, (_, i) => {
    const cpu = member(`big${String(i).padStart(2, '0')}`, 60 + ((i * 37) % 60), 0.2 + ((i * 13) % 10) / 10)
    return i % 3 === 0 ? gpu(cpu, 40 + i * 10, 0.02 + i / 1000) : cpu
  })
  const p = mustPlan(plan(view(members, 0.5), m))
  assertWithinMemory(p, m, members, 'heuristic')
  assert.ok(p.stages.some((s) => (s.gpuLayers ?? 0) > 0), 'GPU nodes take part')
  assert.deepEqual(plan(view([...members].reverse(), 0.5), m), p)
  for (const x of members) {
    const single = plan(view([x]), m)
    if (single.kind === 'plan') assert.ok(p.predictedMsPerToken <= single.predictedMsPerToken)
  }
})
