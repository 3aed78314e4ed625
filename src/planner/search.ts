import { CostModel } from './cost-model.js'

export { CostModel, MIN_HOP_HALF_MS } from './cost-model.js'

export interface StageChoice { node: number, start: number, end: number, costPs: number }

export interface SearchResult {
  stages: StageChoice[]
  /** Σ stage cost + Σ hops around the ring */
  totalPs: number
  ringPs: number
  /** slowest stage's compute cost */
  bottleneckPs: number
}

/** Lexicographic order of (latency, bottleneck, stage count): lower is better. */
function better (lat: number, bn: number, cnt: number, lat2: number, bn2: number, cnt2: number): boolean {
  if (lat !== lat2) return lat < lat2
  if (bn !== bn2) return bn < bn2
  return cnt < cnt2
}

/** a and b can swap places in any plan without changing its cost or feasibility. */
function interchangeable (cm: CostModel, a: number, b: number, nodes: readonly number[]): boolean {
  const na = cm.input.nodes[a]!
  const nb = cm.input.nodes[b]!
  // memory beyond what the whole model needs makes no difference
  const all = cm.stageBytes(0, cm.n)
  if (na.speedNs !== nb.speedNs || Math.min(na.memoryBytes, all) !== Math.min(nb.memoryBytes, all)) return false
  const da = na.device
  const db = nb.device
  if ((da === undefined) !== (db === undefined)) return false
  if (da !== undefined && db !== undefined && (da.memoryBytes !== db.memoryBytes || da.speedNs !== db.speedNs || da.maxLayers !== db.maxLayers)) return false
  const r = cm.input.rttHalfMs
  if (r[a]![b] !== r[b]![a]) return false
  for (const x of nodes) {
    if (x === a || x === b) continue
    if (r[a]![x] !== r[b]![x] || r[x]![a] !== r[x]![b]) return false
  }
  return true
}

function popcount (x: number): number {
  let c = 0
  for (let v = x; v !== 0; v &= v - 1) c++
  return c
}

/** Largest DP table (entries) the exact search allocates. */
const MAX_TABLE = 4_000_000

/** How many nodes the exact search can take for this model (≤ 8, less for very deep models). */
export function exactNodeLimit (nLayers: number): number {
  let k = 8
  while (k > 1 && (1 << k) * k * (nLayers + 1) > MAX_TABLE) k--
  return k
}

/**
 * Exact search over the given nodes (canonical indices, ≤ exactNodeLimit): every subset, every ring
 * order, every integer split into contiguous half-open ranges. DP state = (first node, used set,
 * last node, layers covered); the value (latency, bottleneck, stages) is compared
 * lexicographically, which is monotone under extension, so the DP is exact for that order. Ties
 * keep the first candidate found, which depends only on the canonical order. Partial plans slower
 * than the best complete plan so far are pruned.
 */
export function searchExact (cm: CostModel, nodes: readonly number[]): SearchResult | undefined {
  const K = nodes.length
  const n = cm.n
  const size = (1 << K) * K * (n + 1)
  const lat = new Float64Array(size)
  const bn = new Float64Array(size)
  const cnt = new Uint8Array(size)
  const parent = new Int32Array(size)
  const from = new Int32Array(size)
  const at = (S: number, v: number, l: number): number => (S * K + v) * (n + 1) + l
  let best: { total: number, bn: number, cnt: number, stages: StageChoice[] } | undefined

  const reconstruct = (idx: number): StageChoice[] => {
    const out: StageChoice[] = []
    for (let i = idx; i >= 0; i = parent[i]!) {
      const l = i % (n + 1)
      const v = Math.floor(i / (n + 1)) % K
      const node = nodes[v]!
      out.push({ node, start: from[i]!, end: l, costPs: cm.costPs(node, from[i]!, l) })
    }
    return out.reverse()
  }

  // Lower bounds for pruning: the rest of the model at the fastest speed, and the cheapest hop back to f.
  let minSpeed = Infinity
  for (const x of nodes) minSpeed = Math.min(minSpeed, cm.bestSpeedNs(x))
  const minHopIn = nodes.map((to) => {
    let m = Infinity
    for (const x of nodes) { const h = x === to ? -1 : cm.hopPs(x, to); if (h >= 0) m = Math.min(m, h) }
    return m
  })
  // Seed with the best single node (canonical order breaks ties), so pruning starts at once.
  for (const x of nodes) {
    const c = evaluateChain(cm, [{ node: x, start: 0, end: n }])
    if (c !== undefined && (best === undefined || better(c.totalPs, c.bottleneckPs, 1, best.total, best.bn, best.cnt))) {
      best = { total: c.totalPs, bn: c.bottleneckPs, cnt: 1, stages: c.stages }
    }
  }

  // Interchangeable nodes (same speed, memory and links) are used in index order only: a node is
  // tried once its previous twin is in the set, and never as the first stage.
  const twin = nodes.map((a, x) => {
    for (let y = x - 1; y >= 0; y--) if (interchangeable(cm, a, nodes[y]!, nodes)) return y
    return -1
  })
  for (let f = 0; f < K; f++) {
    if (twin[f]! >= 0) continue
    lat.fill(Infinity)
    for (let e = 1; e <= n && cm.fits(nodes[f]!, 0, e); e++) {
      const i = at(1 << f, f, e)
      const c = cm.costPs(nodes[f]!, 0, e)
      lat[i] = c; bn[i] = c; cnt[i] = 1; parent[i] = -1; from[i] = 0
    }
    for (let S = 1; S < 1 << K; S++) {
      if ((S & (1 << f)) === 0) continue
      for (let v = 0; v < K; v++) {
        if ((S & (1 << v)) === 0) continue
        for (let l = 1; l <= n; l++) {
          const i = at(S, v, l)
          const li = lat[i]!
          if (li === Infinity) continue
          if (l === n) {
            const ring = S === 1 << f ? 0 : cm.hopPs(nodes[v]!, nodes[f]!)
            if (ring < 0) continue
            if (best === undefined || better(li + ring, bn[i]!, cnt[i]!, best.total, best.bn, best.cnt)) {
              best = { total: li + ring, bn: bn[i]!, cnt: cnt[i]!, stages: [] }
              best.stages = reconstruct(i)
            }
            continue
          }
          const free = K - popcount(S)
          if (free === 0) continue
          if (best !== undefined) {
            // (latency, bottleneck, stages) lower bounds of any completion of this state
            const latLb = li + minSpeed * cm.remainingWeight(l) + (S === 1 << f ? 0 : minHopIn[f]!)
            const bnLb = Math.max(bn[i]!, Math.floor(minSpeed * cm.remainingWeight(l) / free))
            if (!better(latLb, bnLb, cnt[i]! + 1, best.total, best.bn, best.cnt)) continue
          }
          for (let u = 0; u < K; u++) {
            if ((S & (1 << u)) !== 0) continue
            if (twin[u]! >= 0 && (S & (1 << twin[u]!)) === 0) continue
            const hop = cm.hopPs(nodes[v]!, nodes[u]!)
            if (hop < 0) continue
            const base = li + hop
            const close = cm.hopPs(nodes[u]!, nodes[f]!)
            // host memory only grows with e (CostModel.fits), so the loop stops at the first miss
            const mono = cm.costMonotone(nodes[u]!)
            for (let e = l + 1; e <= n && cm.fits(nodes[u]!, l, e); e++) {
              if (e === n && close < 0) break
              const c = cm.costPs(nodes[u]!, l, e)
              const nl = base + c
              // admissible bound, non-decreasing in e unless the node's device is slower than its host
              // (a longer stage may then move offloaded layers back to the faster host): stop extending
              const nbn = Math.max(bn[i]!, c)
              if (best !== undefined) {
                const latLb = nl + (e === n ? close : minSpeed * cm.remainingWeight(e) + minHopIn[f]!)
                if (latLb > best.total || (latLb === best.total && nbn > best.bn)) { if (mono) break; continue }
              }
              const j = at(S | (1 << u), u, e)
              if (better(nl, nbn, cnt[i]! + 1, lat[j]!, bn[j]!, cnt[j]!)) {
                lat[j] = nl; bn[j] = nbn; cnt[j] = cnt[i]! + 1; parent[j] = i; from[j] = l
              }
            }
          }
        }
      }
    }
  }
  if (best === undefined) return undefined
  const st = best.stages
  let ringPs = 0
  if (st.length > 1) for (let k = 0; k < st.length; k++) ringPs += cm.hopPs(st[k]!.node, st[(k + 1) % st.length]!.node)
  return { stages: st, totalPs: best.total, ringPs, bottleneckPs: best.bn }
}

/** Evaluates a given chain (nodes in order with ranges); undefined when it does not fit or lacks a link. */
export function evaluateChain (cm: CostModel, chain: ReadonlyArray<{ node: number, start: number, end: number }>): SearchResult | undefined {
  if (chain.length === 0 || chain[0]!.start !== 0 || chain[chain.length - 1]!.end !== cm.n) return undefined
  let total = 0
  let ring = 0
  let bottleneck = 0
  const stages: StageChoice[] = []
  for (let k = 0; k < chain.length; k++) {
    const s = chain[k]!
    if (s.end <= s.start || (k > 0 && s.start !== chain[k - 1]!.end) || !cm.fits(s.node, s.start, s.end)) return undefined
    const c = cm.costPs(s.node, s.start, s.end)
    stages.push({ ...s, costPs: c })
    total += c
    bottleneck = Math.max(bottleneck, c)
    if (chain.length > 1) {
      const hop = cm.hopPs(s.node, chain[(k + 1) % chain.length]!.node)
      if (hop < 0) return undefined
      ring += hop
    }
  }
  return { stages, totalPs: total + ring, ringPs: ring, bottleneckPs: bottleneck }
}

/**
 * Deterministic heuristic for clusters larger than the exact limit: the exact search over the
 * fastest `limit` nodes (by their best speed, device included), and a greedy chain (largest budgets first, each filled to capacity) as
 * a fallback when those cannot hold the model. Single nodes are always candidates too.
 */
export function searchHeuristic (cm: CostModel, limit: number): SearchResult | undefined {
  const all = cm.input.nodes.map((_, i) => i)
  const bySpeed = [...all].sort((a, b) => cm.bestSpeedNs(a) - cm.bestSpeedNs(b) || cm.input.nodes[b]!.memoryBytes - cm.input.nodes[a]!.memoryBytes || a - b)
  const candidates: SearchResult[] = []
  const exact = searchExact(cm, bySpeed.slice(0, limit).sort((a, b) => a - b))
  if (exact !== undefined) candidates.push(exact)
  for (const i of all) {
    const single = evaluateChain(cm, [{ node: i, start: 0, end: cm.n }])
    if (single !== undefined) candidates.push(single)
  }
  if (candidates.length === 0) {
    const byMemory = [...all].sort((a, b) => cm.input.nodes[b]!.memoryBytes - cm.input.nodes[a]!.memoryBytes || a - b)
    const chain: Array<{ node: number, start: number, end: number }> = []
    let l = 0
    for (const node of byMemory) {
      if (l === cm.n) break
      let e = l
      while (e < cm.n && cm.fits(node, l, e + 1)) e++
      if (e > l) { chain.push({ node, start: l, end: e }); l = e }
    }
    const greedy = evaluateChain(cm, chain)
    if (greedy !== undefined) candidates.push(greedy)
  }
  let best: SearchResult | undefined
  for (const c of candidates) {
    if (best === undefined || better(c.totalPs, c.bottleneckPs, c.stages.length, best.totalPs, best.bottleneckPs, best.stages.length)) best = c
  }
  return best
}
