import type { CanonicalInput } from './canonical-view.js'
import { PS_PER_HALF_MS } from './canonical-view.js'

/** Floor of a hop's cost, in half-milliseconds (0.5 ms). */
export const MIN_HOP_HALF_MS = 1

/**
 * Costs and memory of candidate stages over the canonical input (integer units, see canonical-view.ts).
 *
 * Memory model (PlannerDevice): a node with a device offloads the LAST k layers of its stage [s, e),
 * k = gpuLayers(node, s, e) = min(e − s, K[node][e]) where K[node][e] is the most layers ending at e whose
 * weights + KV + per-layer overhead, plus one stage compute buffer, fit the device budget (and ≤ maxLayers).
 * Because the offloaded layers end at e, K depends on e alone. On the last stage the output (output norm +
 * projection) goes to the device first, as llama.cpp offloads it before any layer (its n_gpu_layers counts
 * the output as layer n_layer; the engine's `gpuOutput` default): K[n] is counted from the budget less the
 * output, and a last stage that offloads a layer runs its output on the device too. The host holds the
 * layers [s, e − k), the embeddings (first stage), the output (last stage, when k = 0) and its own compute
 * buffer. A CPU-only node has k = 0.
 */
export class CostModel {
  readonly n: number
  private readonly prefixWeight: number[]
  private readonly prefixBytes: number[]
  /** Σ KV bytes of layers [0, i) */
  private readonly prefixKv: number[]
  /** Σ (weights + KV + per-layer overhead) of layers [0, i): what an offloaded layer puts on the device */
  private readonly prefixDevice: number[]
  /** per node: K[e] for e in 0..n (undefined: no device) */
  private readonly offloadable: Array<Int32Array | undefined>

  constructor (readonly input: CanonicalInput) {
    const m = input.model
    this.n = m.nLayers
    this.prefixWeight = [0]
    this.prefixBytes = [0]
    this.prefixKv = [0]
    this.prefixDevice = [0]
    for (let i = 0; i < this.n; i++) {
      const kv = m.kvBytesPerLayer?.[i] ?? m.kvBytesPerTokenPerLayer * m.contextSize
      this.prefixWeight.push(this.prefixWeight[i]! + input.layerWeight[i]!)
      this.prefixBytes.push(this.prefixBytes[i]! + m.layerBytes[i]!)
      this.prefixKv.push(this.prefixKv[i]! + kv)
      this.prefixDevice.push(this.prefixDevice[i]! + m.layerBytes[i]! + kv + (m.layerOverheadBytes ?? 0))
    }
    this.offloadable = input.nodes.map((node) => {
      const d = node.device
      if (d === undefined) return undefined
      const cap = d.memoryBytes - (m.stageOverheadBytes ?? 0)
      const k = new Int32Array(this.n + 1)
      // two pointers: the smallest lo with layers [lo, e) within cap never decreases as e grows
      let lo = 0
      for (let e = 1; e < this.n; e++) {
        while (lo < e && this.prefixDevice[e]! - this.prefixDevice[lo]! > cap) lo++
        k[e] = cap < 0 ? 0 : Math.min(e - lo, d.maxLayers)
      }
      // the last stage also holds the output on the device (a smaller cap, so K[n] ≤ K[n − 1] + 1 still holds)
      const capLast = cap - m.outputBytes
      let kLast = 0
      while (capLast >= 0 && kLast < Math.min(this.n, d.maxLayers) && this.prefixDevice[this.n]! - this.prefixDevice[this.n - kLast - 1]! <= capLast) kLast++
      k[this.n] = kLast
      return k
    })
  }

  /**
   * Whether extending node's stage by a layer always adds at least that layer's cost at the node's best
   * speed (the search's bound may then stop extending): true without a device or when the device is at
   * least as fast as the host. A longer stage moves offloaded layers from the device to the host (the
   * device's window slides), which lowers the cost when the device is the slower one.
   */
  costMonotone (node: number): boolean {
    const nd = this.input.nodes[node]!
    return nd.device === undefined || nd.device.speedNs <= nd.speedNs
  }

  /** Layers of the stage [start, end) on node that run on its device: the last ones, as many as fit. */
  gpuLayers (node: number, start: number, end: number): number {
    const k = this.offloadable[node]
    return k === undefined ? 0 : Math.min(end - start, k[end]!)
  }

  /** Device bytes of node's stage [start, end): offloaded layers + one compute buffer + the output on the last stage (0 when none). */
  deviceBytes (node: number, start: number, end: number): number {
    const k = this.gpuLayers(node, start, end)
    const m = this.input.model
    return k === 0 ? 0 : this.prefixDevice[end]! - this.prefixDevice[end - k]! + (m.stageOverheadBytes ?? 0) + (end === this.n ? m.outputBytes : 0)
  }

  /** Bytes a stage [start, end) needs all on the host: weights + embeddings (first) + output (last) + KV + overheads. */
  stageBytes (start: number, end: number): number {
    return this.hostPart(start, end, end, false)
  }

  /** Host bytes of node's stage [start, end): the stage less its offloaded layers. */
  hostBytes (node: number, start: number, end: number): number {
    const k = this.gpuLayers(node, start, end)
    return this.hostPart(start, end, end - k, k > 0)
  }

  /** Host bytes of a stage [start, end) whose layers [start, hostEnd) stay on the host (the output too unless offloaded). */
  private hostPart (start: number, end: number, hostEnd: number, offloads: boolean): number {
    const m = this.input.model
    return this.prefixBytes[hostEnd]! - this.prefixBytes[start]! +
      (start === 0 ? m.embeddingBytes : 0) + (end === this.n && !offloads ? m.outputBytes : 0) +
      this.prefixKv[hostEnd]! - this.prefixKv[start]! + (m.layerOverheadBytes ?? 0) * (hostEnd - start) + (m.stageOverheadBytes ?? 0)
  }

  /** Weight bytes of a stage [start, end): layers + embeddings (first) + output (last). */
  weightBytes (start: number, end: number): number {
    const m = this.input.model
    return this.prefixBytes[end]! - this.prefixBytes[start]! + (start === 0 ? m.embeddingBytes : 0) + (end === this.n ? m.outputBytes : 0)
  }

  /**
   * Whether node can hold [start, end): host part within its budget (the device part fits by construction).
   * Monotone in end: K[e + 1] ≤ K[e] + 1 (layers [e − K[e] − 1, e) do not fit, so neither do
   * [e − K[e] − 1, e + 1)), so the host keeps [start, max(start, end − K[end])), which never shrinks.
   */
  fits (node: number, start: number, end: number): boolean {
    return this.hostBytes(node, start, end) <= this.input.nodes[node]!.memoryBytes
  }

  /** Compute cost of node running [start, end) for one token, in ps: host layers at the host's speed, offloaded ones (and then the output) at the device's. */
  costPs (node: number, start: number, end: number): number {
    const nd = this.input.nodes[node]!
    const out = end === this.n ? this.input.outputWeight : 0
    const k = this.gpuLayers(node, start, end)
    if (k === 0) return nd.speedNs * (this.prefixWeight[end]! - this.prefixWeight[start]! + out)
    const split = end - k
    return nd.speedNs * (this.prefixWeight[split]! - this.prefixWeight[start]!) + nd.device!.speedNs * (this.prefixWeight[end]! - this.prefixWeight[split]! + out)
  }

  /** The fastest per-layer speed of node (its device's when that is faster), ns per mean layer. */
  bestSpeedNs (node: number): number {
    const nd = this.input.nodes[node]!
    return Math.min(nd.speedNs, nd.device?.speedNs ?? Infinity)
  }

  /** Per-mille weight of layers [from, n) plus the output projection: what is left to compute. */
  remainingWeight (from: number): number {
    return this.prefixWeight[this.n]! - this.prefixWeight[from]! + this.input.outputWeight
  }

  /**
   * Cost of the hop a → b in ps: its full RTT, at least MIN_HOP_HALF_MS (a hop is never free: framing,
   * Noise and yamux cost ~0.3 ms even on loopback, whose RTT would otherwise round to 0), or -1 when
   * the link was never measured.
   */
  hopPs (a: number, b: number): number {
    const h = this.input.rttHalfMs[a]![b]!
    return h < 0 ? -1 : Math.max(h, MIN_HOP_HALF_MS) * PS_PER_HALF_MS
  }
}
