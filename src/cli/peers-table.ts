import type { ClusterStateJson, MemberJson } from '../shared/cluster-state.js'

/** Formats `exo-p2p peers` output. Pure. */
export function shortPeerId (id: string): string {
  return id.length <= 12 ? id : `…${id.slice(-8)}`
}

const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)}G`

function row (m: MemberJson, selfId: string): string[] {
  const extra = m.addresses.length > 1 ? ` +${m.addresses.length - 1}` : ''
  return [
    `${m.peerId === selfId ? '*' : ' '}${m.name}`,
    shortPeerId(m.peerId),
    m.state,
    `${m.addresses[0] ?? '-'}${extra}`,
    m.httpUrl,
    m.peerId === selfId ? 'self' : m.rttMs !== undefined ? `${m.rttMs.toFixed(2)}ms` : '-',
    `${gib(m.capabilities.memoryBudgetBytes)}/${gib(m.capabilities.freeMemoryBytes)}`,
    m.capabilities.backend,
    m.models.map((x) => x.id).join(',') || '-',
    m.shards.map((s) => `${s.model}[${s.start},${s.end})${s.ready ? '' : '…'}`).join(',') || '-',
    m.peerId === selfId ? 'now' : `${(m.lastSeenMsAgo / 1000).toFixed(1)}s ago`
  ]
}

export function formatPeersTable (state: ClusterStateJson): string {
  const header = ['NAME', 'ID', 'STATE', 'ADDRESSES', 'HTTP', 'RTT', 'MEM budget/free', 'BACKEND', 'MODELS', 'SHARDS', 'LAST SEEN']
  const rows = [header, ...state.members.map((m) => row(m, state.self.peerId))]
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd())
  return [
    ...lines,
    '',
    `${state.members.length} member(s) · view ${state.viewHash.slice(0, 12)} · * = this node (${state.self.name})`
  ].join('\n')
}
