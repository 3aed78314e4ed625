import type { Registry } from 'prom-client'
import type { ClusterStateJson } from '../shared/cluster-state.js'
import type { MembershipStats } from '../mesh/membership/membership-service.js'
import type { PeerGuardStats } from '../mesh/peer-guard.js'
import { counterOf, gaugeOf } from './metrics/prom.js'

/** What the mesh metrics read at each scrape. */
export interface MeshSnapshot {
  state: ClusterStateJson
  stats: MembershipStats
  connections: number
  guard: PeerGuardStats
}

/**
 * The mesh's metrics: view, connections, links (RTT in seconds), membership gossip traffic. Values are
 * read from `snapshot()` at each scrape.
 */
export function registerMeshMetrics (registry: Registry, read: () => MeshSnapshot): void {
  const count = (s: 'alive' | 'suspect'): number => read().state.members.filter((m) => m.state === s).length
  gaugeOf(registry, 'exo_p2p_members', 'Members in this node\'s view (self included), by liveness.', ['state'],
    () => [[{ state: 'alive' }, count('alive')], [{ state: 'suspect' }, count('suspect')]])
  gaugeOf(registry, 'exo_p2p_peers', 'Other members in this node\'s view.', [], () => [[{}, Math.max(0, read().state.members.length - 1)]])
  gaugeOf(registry, 'exo_p2p_connections', 'Open libp2p connections.', [], () => [[{}, read().connections]])
  const ownLinks = (): Array<{ labels: { peer: string, name: string }, rttMs: number, bw: number }> => {
    const { state } = read()
    const nameOf = new Map(state.members.map((m) => [m.peerId, m.name]))
    return state.links.filter((l) => l.from === state.self.peerId)
      .map((l) => ({ labels: { peer: l.to, name: nameOf.get(l.to) ?? '' }, rttMs: l.rttMs, bw: l.bandwidthBytesPerSec }))
  }
  gaugeOf(registry, 'exo_p2p_link_rtt_seconds', 'Smoothed RTT from this node to each peer.', ['peer', 'name'],
    () => ownLinks().map((l) => [l.labels, l.rttMs / 1000]))
  gaugeOf(registry, 'exo_p2p_link_bandwidth_bytes_per_second', 'Bandwidth estimate from this node to each peer.', ['peer', 'name'],
    () => ownLinks().map((l) => [l.labels, l.bw]))
  counterOf(registry, 'exo_p2p_gossip_messages_received_total', 'Membership gossip messages that reached validation.', [], () => [[{}, read().stats.received]])
  counterOf(registry, 'exo_p2p_gossip_messages_rejected_total', 'Membership gossip messages rejected by the validator, by reason.', ['reason'],
    () => Object.entries(read().stats.rejected).map(([reason, n]) => [{ reason }, n]))
  counterOf(registry, 'exo_p2p_gossip_messages_ignored_total', 'Membership gossip messages dropped without charging the relay (rate limit reached through a relay, banned signer), by reason.', ['reason'],
    () => Object.entries(read().stats.ignored).map(([reason, n]) => [{ reason }, n]))
  counterOf(registry, 'exo_p2p_gossip_peers_banned_total', 'Peers disconnected and refused for the cool-off (gossip score under the graylist threshold, oversized RPC), by reason.', ['reason'],
    () => Object.entries(read().guard.banned).map(([reason, n]) => [{ reason }, n]))
  counterOf(registry, 'exo_p2p_gossip_peers_pruned_total', 'Times this node pruned a peer from the gossip mesh for a negative score.', [], () => [[{}, read().guard.pruned]])
  counterOf(registry, 'exo_p2p_gossip_messages_published_total', 'Membership messages published by this node.', [], () => [[{}, read().stats.published]])
  counterOf(registry, 'exo_p2p_gossip_bytes_received_total', 'Payload bytes of membership messages received.', [], () => [[{}, read().stats.receivedBytes]])
  counterOf(registry, 'exo_p2p_gossip_bytes_published_total', 'Payload bytes of membership messages published.', [], () => [[{}, read().stats.publishedBytes]])
  gaugeOf(registry, 'exo_p2p_view_info', 'Hash of the canonical view (label).', ['view_hash'], () => [[{ view_hash: read().state.viewHash }, 1]])
}
