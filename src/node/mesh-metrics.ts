import type { ClusterStateJson } from '../shared/cluster-state.js'
import type { MembershipStats } from '../mesh/membership/membership-service.js'

const esc = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

/** Prometheus text exposition (format 0.0.4) of the mesh. Pure. */
export function meshMetricsText (state: ClusterStateJson, stats: MembershipStats, connections: number): string {
  const lines: string[] = []
  const metric = (name: string, type: string, help: string, samples: Array<[string, number]>): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${Number.isFinite(v) ? v : 0}`)
  }
  const count = (s: 'alive' | 'suspect'): number => state.members.filter((m) => m.state === s).length
  metric('exo_p2p_members', 'gauge', 'Members in this node\'s view (self included), by liveness.',
    [['{state="alive"}', count('alive')], ['{state="suspect"}', count('suspect')]])
  metric('exo_p2p_peers', 'gauge', 'Other members in this node\'s view.', [['', Math.max(0, state.members.length - 1)]])
  metric('exo_p2p_connections', 'gauge', 'Open libp2p connections.', [['', connections]])
  const own = state.links.filter((l) => l.from === state.self.peerId)
  const nameOf = new Map(state.members.map((m) => [m.peerId, m.name]))
  metric('exo_p2p_link_rtt_ms', 'gauge', 'Smoothed RTT from this node to each peer (ms).',
    own.map((l) => [`{peer="${esc(l.to)}",name="${esc(nameOf.get(l.to) ?? '')}"}`, l.rttMs]))
  metric('exo_p2p_link_bandwidth_bytes_per_second', 'gauge', 'Bandwidth estimate from this node to each peer.',
    own.map((l) => [`{peer="${esc(l.to)}",name="${esc(nameOf.get(l.to) ?? '')}"}`, l.bandwidthBytesPerSec]))
  metric('exo_p2p_gossip_messages_received_total', 'counter', 'Membership gossip messages that reached validation.', [['', stats.received]])
  metric('exo_p2p_gossip_messages_rejected_total', 'counter', 'Membership gossip messages rejected by the validator.',
    Object.entries(stats.rejected).map(([reason, n]) => [`{reason="${reason}"}`, n]))
  metric('exo_p2p_gossip_messages_published_total', 'counter', 'Membership messages published by this node.', [['', stats.published]])
  metric('exo_p2p_gossip_bytes_received_total', 'counter', 'Payload bytes of membership messages received.', [['', stats.receivedBytes]])
  metric('exo_p2p_gossip_bytes_published_total', 'counter', 'Payload bytes of membership messages published.', [['', stats.publishedBytes]])
  metric('exo_p2p_view_info', 'gauge', 'Hash of the canonical view (label).', [[`{view_hash="${state.viewHash}"}`, 1]])
  return lines.join('\n') + '\n'
}
