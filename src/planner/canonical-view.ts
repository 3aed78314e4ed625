import { PlannerInputError } from '../shared/errors/planner-errors.js'
import type { NodeId } from '../shared/ids.js'
import type { ModelCard, PlannerMember, PlannerView } from './types.js'

/**
 * Canonical, quantised form of the planner's input. Everything the search sees is integer, so every
 * node computes the same plan from views that differ only in member order or measurement jitter.
 *
 * Units: compute cost in "ps" = ns × per-mille of a mean layer; RTT in half-milliseconds.
 */
export interface CanonicalNode {
  peerId: NodeId
  name: string
  /** budget rounded down to whole MiB, in bytes */
  memoryBytes: number
  /** 5 % log bucket of computeMsPerLayer: ns = round(1.05^speedBucket) */
  speedBucket: number
  /** ns per mean layer (derived from speedBucket) */
  speedNs: number
  /** the node fetches its layers: bandwidth rounded down to a power of two, bytes/s (0 = not measured); undefined = it holds the file */
  fetchBytesPerSec?: number
  /** the node's device (absent = CPU only, or a device that offers no memory or no layers) */
  device?: CanonicalDevice
}

/** A node's device on the planner's grid (see PlannerDevice). */
export interface CanonicalDevice {
  /** budget rounded down to whole MiB, bytes */
  memoryBytes: number
  /** 5 % log bucket of the device's computeMsPerLayer (as CanonicalNode.speedBucket) */
  speedBucket: number
  speedNs: number
  /** at most this many layers offloaded (4096 when unlimited) */
  maxLayers: number
}

export interface CanonicalInput {
  nodes: CanonicalNode[]
  /** rttHalfMs[i][j]: quantised RTT between nodes i and j (symmetric), -1 = no measurement */
  rttHalfMs: number[][]
  model: ModelCard
  /** per-mille of the mean layer bytes, per layer and for the output projection */
  layerWeight: number[]
  outputWeight: number
}

export const MIB = 1024 * 1024
const SPEED_BASE = 1.05
export const PS_PER_HALF_MS = 500_000 * 1000
export const PS_PER_MS = 1e9
const MAX_LAYERS = 4096

function check (ok: boolean, what: string): void {
  if (!ok) throw new PlannerInputError(what)
}

function validateModel (m: ModelCard): void {
  check(Number.isInteger(m.nLayers) && m.nLayers >= 1 && m.nLayers <= 4096, `model ${m.id}: nLayers ${m.nLayers} not an integer in [1, 4096]`)
  check(m.layerBytes.length === m.nLayers, `model ${m.id}: ${m.layerBytes.length} layer sizes for ${m.nLayers} layers`)
  const nonNeg = (x: number): boolean => Number.isSafeInteger(x) && x >= 0
  check(m.layerBytes.every(nonNeg) && m.layerBytes.some((b) => b > 0), `model ${m.id}: layer sizes must be non-negative integers, not all 0`)
  for (const k of ['embeddingBytes', 'outputBytes', 'kvBytesPerTokenPerLayer'] as const) check(nonNeg(m[k]), `model ${m.id}: ${k} ${m[k]} is not a non-negative integer`)
  check(nonNeg(m.stageOverheadBytes ?? 0), `model ${m.id}: stageOverheadBytes is not a non-negative integer`)
  check(nonNeg(m.layerOverheadBytes ?? 0), `model ${m.id}: layerOverheadBytes is not a non-negative integer`)
  if (m.kvBytesPerLayer !== undefined) {
    check(m.kvBytesPerLayer.length === m.nLayers && m.kvBytesPerLayer.every(nonNeg), `model ${m.id}: kvBytesPerLayer must hold ${m.nLayers} non-negative integers`)
  }
  check(Number.isInteger(m.contextSize) && m.contextSize >= 1, `model ${m.id}: contextSize ${m.contextSize} < 1`)
}

function speedBucketOf (ms: number): number {
  return Math.round(Math.log(ms * 1e6) / Math.log(SPEED_BASE))
}

/** Validates and quantises a member's device; undefined when it offers no memory or no layers (CPU only). */
function canonicalDevice (m: PlannerMember): CanonicalDevice | undefined {
  const d = m.device
  if (d === undefined) return undefined
  check(Number.isFinite(d.budgetBytes) && d.budgetBytes >= 0, `${m.peerId}: device budget ${d.budgetBytes} is not a finite number ≥ 0`)
  check(Number.isFinite(d.computeMsPerLayer) && d.computeMsPerLayer > 0 && d.computeMsPerLayer <= 1000, `${m.peerId}: device computeMsPerLayer ${d.computeMsPerLayer} not in (0, 1000]`)
  check(d.maxLayers === undefined || (Number.isInteger(d.maxLayers) && d.maxLayers >= 0), `${m.peerId}: device maxLayers ${String(d.maxLayers)} is not an integer ≥ 0`)
  const memoryBytes = Math.floor(d.budgetBytes / MIB) * MIB
  const maxLayers = Math.min(d.maxLayers ?? MAX_LAYERS, MAX_LAYERS)
  if (memoryBytes === 0 || maxLayers === 0) return undefined
  const speedBucket = speedBucketOf(d.computeMsPerLayer)
  return { memoryBytes, speedBucket, speedNs: Math.max(1, Math.round(SPEED_BASE ** speedBucket)), maxLayers }
}

/** Sorts, validates and quantises the view. Throws `PlannerInputError` on invalid input. */
export function canonicalise (view: PlannerView, model: ModelCard): CanonicalInput {
  validateModel(model)
  const members = [...view.members].sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0))
  const nodes = members.map((m, i): CanonicalNode => {
    check(typeof m.peerId === 'string' && m.peerId.length > 0, `member ${i} has no peer id`)
    check(i === 0 || members[i - 1]!.peerId !== m.peerId, `peer id ${m.peerId} appears twice`)
    check(Number.isFinite(m.memoryBudgetBytes) && m.memoryBudgetBytes >= 0, `${m.peerId}: memory budget ${m.memoryBudgetBytes} is not a finite number ≥ 0`)
    check(Number.isFinite(m.computeMsPerLayer) && m.computeMsPerLayer > 0 && m.computeMsPerLayer <= 1000, `${m.peerId}: computeMsPerLayer ${m.computeMsPerLayer} not in (0, 1000]`)
    const speedBucket = speedBucketOf(m.computeMsPerLayer)
    const fetch = m.fetchBytesPerSec
    if (fetch !== undefined) check(Number.isFinite(fetch) && fetch >= 0, `${m.peerId}: fetchBytesPerSec ${fetch} is not a finite number ≥ 0`)
    const device = canonicalDevice(m)
    return {
      peerId: m.peerId,
      name: m.name,
      memoryBytes: Math.floor(m.memoryBudgetBytes / MIB) * MIB,
      speedBucket,
      speedNs: Math.max(1, Math.round(SPEED_BASE ** speedBucket)),
      ...(fetch !== undefined ? { fetchBytesPerSec: fetch >= 1 ? 2 ** Math.floor(Math.log2(fetch)) : 0 } : {}),
      ...(device !== undefined ? { device } : {})
    }
  })
  const rttHalfMs = nodes.map((a) => nodes.map((b) => {
    if (a.peerId === b.peerId) return 0
    const samples = [view.rttMs[a.peerId]?.[b.peerId], view.rttMs[b.peerId]?.[a.peerId]]
      .filter((x): x is number => typeof x === 'number')
    for (const s of samples) check(Number.isFinite(s) && s >= 0, `rtt ${a.peerId} → ${b.peerId} = ${s} is not a finite number ≥ 0`)
    if (samples.length === 0) return -1
    const mean = samples.reduce((x, y) => x + y, 0) / samples.length
    return Math.round(mean * 2)
  }))
  const total = model.layerBytes.reduce((a, b) => a + b, 0)
  const mean = total / model.nLayers
  return {
    nodes,
    rttHalfMs,
    model,
    layerWeight: model.layerBytes.map((b) => Math.round((1000 * b) / mean)),
    outputWeight: Math.round((1000 * model.outputBytes) / mean)
  }
}

/** The JSON that `plan.id` hashes (with the stage assignment): quantised numbers only. */
export function canonicalInputJson (c: CanonicalInput): unknown {
  const m = c.model
  return {
    // per-layer KV bytes join the hash only when present (plan ids of other models are unchanged)
    model: [m.id, m.nLayers, m.layerBytes, m.embeddingBytes, m.outputBytes, m.kvBytesPerTokenPerLayer, m.contextSize, m.stageOverheadBytes ?? 0, m.layerOverheadBytes ?? 0,
      ...(m.kvBytesPerLayer !== undefined ? [m.kvBytesPerLayer] : [])],
    // a node that fetches its layers adds its quantised bandwidth, a node with a device the device
    // (entries of CPU-only holders are unchanged, so are their plan ids)
    nodes: c.nodes.map((n) => [n.peerId, n.memoryBytes / MIB, n.speedBucket,
      ...(n.fetchBytesPerSec !== undefined ? [n.fetchBytesPerSec] : []),
      ...(n.device !== undefined ? [{ gpu: [n.device.memoryBytes / MIB, n.device.speedBucket, n.device.maxLayers] }] : [])]),
    rtt: c.rttHalfMs
  }
}
