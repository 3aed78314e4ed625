import type { ClusterStateJson, LinkJson, MemberJson } from '../shared/cluster-state.js'
import type { ViewState } from '../mesh/membership/view.js'
import { livenessOf } from '../mesh/membership/view.js'
import type { LinkMeasurement } from '../mesh/membership/announcement.js'

export interface ClusterStateInput {
  view: ViewState
  viewHash: string
  /** membership clock now (same clock as receivedAt) */
  now: number
  self: ClusterStateJson['self']
  /** this node's current measurements (fresher than its last announcement) */
  ownLinks: LinkMeasurement[]
  /** the agreed plan (or the proposal while not ready) and why nothing serves, when a pipeline runs */
  plan?: ClusterStateJson['plan']
  planReason?: string
}

/** GET /cluster/state body from the membership view. Pure. */
export function buildClusterState (input: ClusterStateInput): ClusterStateJson {
  const { view, now } = input
  const selfId = view.selfId
  const ownRtt = new Map(input.ownLinks.map((l) => [l.peerId, l.rttMs]))
  const ids = [...view.members.keys()].sort()
  const present = new Set(ids)
  const members: MemberJson[] = []
  const links: LinkJson[] = []
  for (const id of ids) {
    const entry = view.members.get(id)
    if (entry === undefined) continue
    const a = entry.announcement
    const rtt = ownRtt.get(id)
    members.push({
      peerId: id,
      name: a.name,
      state: livenessOf(view, id, now),
      addresses: a.addresses,
      httpUrl: a.httpUrl,
      capabilities: a.capabilities,
      models: a.models,
      shards: a.shards,
      queueLength: a.queueLength,
      ...(a.partials !== undefined && a.partials.length > 0 ? { partials: a.partials } : {}),
      ...(a.devices !== undefined && a.devices.length > 0 ? { devices: a.devices } : {}),
      lastSeenMsAgo: id === selfId ? 0 : Math.max(0, Math.round(now - entry.receivedAt)),
      ...(id !== selfId && rtt !== undefined ? { rttMs: rtt } : {})
    })
    const source = id === selfId ? input.ownLinks : a.links
    for (const l of source) {
      if (present.has(l.peerId) && l.peerId !== id) links.push({ from: id, to: l.peerId, rttMs: l.rttMs, bandwidthBytesPerSec: l.bandwidthBytesPerSec })
    }
  }
  return {
    self: input.self,
    members,
    links,
    viewHash: input.viewHash,
    ...(input.plan !== undefined ? { plan: input.plan } : {}),
    ...(input.planReason !== undefined ? { planReason: input.planReason } : {})
  }
}
