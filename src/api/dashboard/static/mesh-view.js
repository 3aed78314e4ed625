// Pure: turns successive GET /cluster/state snapshots into what the page draws. A node that was seen and
// then left `members` is kept and shown dead (the mesh drops dead members from its view).

/**
 * @typedef {{ peerId: string, name: string, state: 'alive' | 'suspect', httpUrl: string, addresses: string[],
 *   capabilities: { memoryBudgetBytes: number, freeMemoryBytes: number, cpuCores: number, backend: string, computeMsPerUnit: number },
 *   models: Array<{ id: string, sizeBytes: number }>,
 *   shards: Array<{ model: string, start: number, end: number, ready: boolean, planId?: string }>,
 *   queueLength: number, lastSeenMsAgo: number, rttMs?: number,
 *   devices?: Array<{ backend: string, name: string, totalBytes: number, freeBytes: number, budgetBytes: number, computeMsPerLayer: number }> }} Member
 * @typedef {{ id: string, model: string, ready: boolean, predictedMsPerToken: number, measuredMsPerToken?: number,
 *   stages: Array<{ peerId: string, name: string, start: number, end: number, ready: boolean, loadProgress?: number, predictedMs?: number,
 *     gpuLayers?: number, deviceBytes?: number }> }} Plan
 * @typedef {{ self: { peerId: string, name: string, httpUrl: string, addresses: string[] }, members: Member[],
 *   links: Array<{ from: string, to: string, rttMs: number, bandwidthBytesPerSec: number }>, viewHash: string,
 *   plan?: Plan | null, planReason?: string }} ClusterState
 * @typedef {{ peerId: string, name: string, status: 'alive' | 'suspect' | 'dead', isSelf: boolean,
 *   member: Member, lastSeenAt: number }} NodeView
 * @typedef {Map<string, { member: Member, lastSeenAt: number }>} Known
 */

/**
 * Merges a snapshot into the set of nodes ever seen. `now` is the page's clock (ms).
 * @param {Known} known  updated in place
 * @param {ClusterState} state
 * @param {number} now
 * @returns {NodeView[]} alive and suspect members first (in the view's order), then the dead ones
 */
export function trackMembers (known, state, now) {
  const present = new Set()
  /** @type {NodeView[]} */
  const live = []
  for (const m of state.members) {
    present.add(m.peerId)
    const lastSeenAt = now - (m.lastSeenMsAgo ?? 0)
    known.set(m.peerId, { member: m, lastSeenAt })
    live.push({
      peerId: m.peerId,
      name: m.name,
      status: m.state === 'suspect' ? 'suspect' : 'alive',
      isSelf: m.peerId === state.self.peerId,
      member: m,
      lastSeenAt
    })
  }
  /** @type {NodeView[]} */
  const dead = []
  for (const [peerId, k] of known) {
    if (present.has(peerId)) continue
    dead.push({ peerId, name: k.member.name, status: 'dead', isSelf: false, member: k.member, lastSeenAt: k.lastSeenAt })
  }
  return [...live, ...dead]
}

/**
 * One undirected edge per pair of present nodes, with the RTT measured in each direction.
 * @param {ClusterState['links']} links
 * @param {Set<string>} present
 * `bandwidthBytesPerSec` is the larger of the two estimates (0 = not measured).
 * @returns {Array<{ a: string, b: string, rttMs: number, rttBackMs?: number, bandwidthBytesPerSec: number }>}
 */
export function pairLinks (links, present) {
  /** @type {Map<string, { a: string, b: string, rttMs: number, rttBackMs?: number, bandwidthBytesPerSec: number }>} */
  const pairs = new Map()
  for (const l of links) {
    if (!present.has(l.from) || !present.has(l.to) || l.from === l.to) continue
    const [a, b] = l.from < l.to ? [l.from, l.to] : [l.to, l.from]
    const key = `${a} ${b}`
    const bw = l.bandwidthBytesPerSec > 0 ? l.bandwidthBytesPerSec : 0
    const e = pairs.get(key)
    if (e === undefined) pairs.set(key, { a, b, rttMs: l.rttMs, bandwidthBytesPerSec: bw })
    else { e.rttBackMs = l.rttMs; e.bandwidthBytesPerSec = Math.max(e.bandwidthBytesPerSec, bw) }
  }
  return [...pairs.values()]
}

/**
 * The layers a node runs: its stage in the agreed plan, else a shard it reports.
 * @param {string} peerId
 * @param {ClusterState} state
 * @param {Member} member
 * @returns {{ start: number, end: number, ready: boolean, source: 'plan' | 'shard', gpuLayers: number } | undefined}
 *   gpuLayers: how many of them run on the node's GPU (the plan's stage; 0 for a shard)
 */
export function layerRangeOf (peerId, state, member) {
  const stage = state.plan?.stages.find((st) => st.peerId === peerId)
  if (stage !== undefined) return { start: stage.start, end: stage.end, ready: stage.ready, source: 'plan', gpuLayers: stage.gpuLayers ?? 0 }
  const shard = member.shards.find((sh) => state.plan == null || sh.model === state.plan.model)
  if (shard !== undefined) return { start: shard.start, end: shard.end, ready: shard.ready, source: 'shard', gpuLayers: 0 }
  return undefined
}

/**
 * Estimated bytes of weights a node holds in memory: its loaded shards' share of each model file.
 * Undefined when nothing is loaded or the model's layer count is unknown.
 * @param {Member} member
 * @param {ClusterState} state
 */
export function estimateUsedBytes (member, state) {
  let used = 0
  let known = false
  for (const sh of member.shards) {
    const size = member.models.find((m) => m.id === sh.model)?.sizeBytes
    const nLayers = state.plan?.model === sh.model ? Math.max(...state.plan.stages.map((st) => st.end)) : undefined
    if (size === undefined || nLayers === undefined || nLayers <= 0) continue
    used += size * (sh.end - sh.start) / nLayers
    known = true
  }
  return known ? used : undefined
}

/**
 * Node centres for the topology SVG: one or two nodes side by side, more on a circle.
 * @param {number} n
 * @param {number} width
 * @param {number} height
 * @returns {Array<{ x: number, y: number }>}
 */
export function layoutNodes (n, width, height) {
  const cx = width / 2
  const cy = height / 2
  if (n === 1) return [{ x: cx, y: cy }]
  if (n === 2) return [{ x: width * 0.2, y: cy }, { x: width * 0.8, y: cy }]
  const rx = width / 2 - 95
  const ry = height / 2 - 55
  return Array.from({ length: n }, (_, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / n
    return { x: cx + rx * Math.cos(a), y: cy + ry * Math.sin(a) }
  })
}
