import { createHash } from 'node:crypto'
import { asPlanId } from '../shared/ids.js'
import { canonicalInputJson, canonicalise, PS_PER_MS } from './canonical-view.js'
import type { CanonicalInput } from './canonical-view.js'
import { CostModel } from './cost-model.js'
import { evaluateChain, exactNodeLimit, searchExact, searchHeuristic } from './search.js'
import type { SearchResult } from './search.js'
import type { ModelCard, NoPlan, Plan, PlannerView } from './types.js'

/** A new plan replaces a still-valid previous one only when it is predicted this much faster. */
export const HYSTERESIS = 0.10

/** "1.2 GB", "0.94 GB", "34.0 MB", "12.0 KB" (decimal units). */
export function formatBytes (b: number): string {
  if (b >= 1e9) return `${(b / 1e9).toFixed(1)} GB`
  if (b >= 1e8) return `${(b / 1e9).toFixed(2)} GB`
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)} MB`
  return `${(b / 1e3).toFixed(1)} KB`
}

function toPlan (c: CanonicalInput, r: SearchResult): Plan {
  const cm = new CostModel(c)
  const stages = r.stages.map((s) => {
    const node = c.nodes[s.node]!
    const fetchBytes = node.fetchBytesPerSec === undefined ? undefined : cm.weightBytes(s.start, s.end)
    const gpuLayers = cm.gpuLayers(s.node, s.start, s.end)
    return {
      peerId: node.peerId,
      name: node.name,
      start: s.start,
      end: s.end,
      computeMs: s.costPs / PS_PER_MS,
      memoryBytes: cm.hostBytes(s.node, s.start, s.end),
      ...(gpuLayers > 0 ? { gpuLayers, deviceBytes: cm.deviceBytes(s.node, s.start, s.end) } : {}),
      ...(fetchBytes !== undefined ? { fetchBytes } : {}),
      ...(fetchBytes !== undefined && node.fetchBytesPerSec! > 0 ? { loadMs: Math.round(fetchBytes / node.fetchBytesPerSec! * 1000) } : {})
    }
  })
  const id = createHash('sha256')
    .update(JSON.stringify({ v: 1, input: canonicalInputJson(c), stages: stages.map((s) => [s.peerId, s.start, s.end]) }))
    .digest('hex')
  return {
    kind: 'plan',
    id: asPlanId(id),
    modelId: c.model.id,
    nLayers: c.model.nLayers,
    stages,
    predictedMsPerToken: r.totalPs / PS_PER_MS,
    ringRttMs: r.ringPs / PS_PER_MS
  }
}

function noPlan (c: CanonicalInput, cm: CostModel): NoPlan {
  const m = c.model
  const needed = cm.stageBytes(0, m.nLayers)
  const onDevices = c.nodes.reduce((a, n) => a + (n.device?.memoryBytes ?? 0), 0)
  const offered = c.nodes.reduce((a, n) => a + n.memoryBytes, 0) + onDevices
  const devices = onDevices > 0 ? ` (${formatBytes(onDevices)} of it device memory)` : ''
  const count = `${c.nodes.length} node${c.nodes.length === 1 ? '' : 's'}`
  let reason: string
  if (c.nodes.length === 0) {
    reason = `model ${m.id} needs ${formatBytes(needed)} and there are no nodes`
  } else if (offered < needed) {
    reason = `model ${m.id} needs ${formatBytes(needed)} (weights, embeddings, output, KV cache for ${m.contextSize} tokens and compute buffers), the ${count} offer ${formatBytes(offered)} in total${devices}`
  } else {
    const largest = Math.max(...c.nodes.map((n) => n.memoryBytes))
    const maxLayer = Math.max(...m.layerBytes)
    reason = `model ${m.id} needs ${formatBytes(needed)} and the ${count} offer ${formatBytes(offered)} in total${devices}, ` +
      `but no chain of contiguous layer ranges fits their budgets (largest budget ${formatBytes(largest)}; ` +
      `the first stage also holds ${formatBytes(m.embeddingBytes)} of embeddings, the last ${formatBytes(m.outputBytes)} of output, ` +
      `the largest layer is ${formatBytes(maxLayer)} + ${formatBytes(Math.max(...(m.kvBytesPerLayer ?? [m.kvBytesPerTokenPerLayer * m.contextSize])))} of KV cache), ` +
      'or the nodes that could hold it have no measured links between them'
  }
  return { kind: 'none', modelId: m.id, reason, neededBytes: needed, offeredBytes: offered }
}

/**
 * Re-evaluates `previous` in the new view; undefined when it no longer fits, a node/link is gone, or a
 * stage would now offload a different number of layers (a device's budget changed).
 */
function reevaluate (c: CanonicalInput, cm: CostModel, previous: Plan): SearchResult | undefined {
  if (previous.modelId !== c.model.id || previous.nLayers !== c.model.nLayers) return undefined
  const index = new Map(c.nodes.map((n, i) => [n.peerId as string, i]))
  const chain = []
  for (const s of previous.stages) {
    const node = index.get(s.peerId)
    if (node === undefined || (s.gpuLayers ?? 0) !== cm.gpuLayers(node, s.start, s.end)) return undefined
    chain.push({ node, start: s.start, end: s.end })
  }
  return evaluateChain(cm, chain)
}

/**
 * The shard plan for `model` on the cluster `view`: which nodes take part, in which ring order, with
 * which half-open layer ranges. Pure and deterministic: the view is canonicalised first (sorted by
 * peer id; memory to whole MiB, speed to 5 % log buckets, RTT to 0.5 ms), so permutations and small
 * jitter give the same plan and the same `id`.
 *
 * Objective: minimal predicted per-token latency = Σ stage compute + Σ hop RTTs around the ring (the
 * hop last → first included; each hop costs its full RTT, at least 0.5 ms — conservative: it also
 * covers the per-hop framing cost), subject to every node's memory budget; among equal latencies the plan
 * with the smallest slowest stage (balance → throughput), then the fewest stages. Single nodes are
 * candidates, so the result is never predicted slower than the best single node that fits.
 *
 * GPUs: a node with a device offloads the last layers of its stage, as many as fit the device's budget
 * (cost-model.ts); those run at the device's measured ms/layer, the rest at the host's. So the search puts
 * layers where they are predicted fastest: a GPU node takes more layers than an equal CPU node, and a
 * pipeline may mix GPU and CPU nodes (each stage's `gpuLayers` tells its engine how many to offload).
 *
 * Hysteresis: a still-valid `previous` plan (same nodes alive, still fits) is returned unchanged
 * (same id) unless the best plan is more than 10 % faster, or `previous` is slower than the best
 * single node that fits.
 */
export function plan (view: PlannerView, model: ModelCard, previous?: Plan): Plan | NoPlan {
  const c = canonicalise(view, model)
  const cm = new CostModel(c)
  const limit = exactNodeLimit(model.nLayers)
  const all = c.nodes.map((_, i) => i)
  const best = c.nodes.length <= limit ? searchExact(cm, all) : searchHeuristic(cm, limit)
  if (best === undefined) return noPlan(c, cm)
  if (previous !== undefined) {
    const prev = reevaluate(c, cm, previous)
    if (prev !== undefined) {
      let bestSingle = Infinity
      for (const i of all) bestSingle = Math.min(bestSingle, evaluateChain(cm, [{ node: i, start: 0, end: cm.n }])?.totalPs ?? Infinity)
      if (prev.totalPs <= best.totalPs * (1 + HYSTERESIS) && prev.totalPs <= bestSingle) return previous
    }
  }
  return toPlan(c, best)
}
