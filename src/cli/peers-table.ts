import type { ClusterStateJson, MemberJson } from '../shared/cluster-state.js'

/** Formats `exo-p2p peers` output. Pure. */
export function shortPeerId (id: string): string {
  return id.length <= 12 ? id : `…${id.slice(-8)}`
}

const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)}G`

/** A member's GPUs: "cuda NVIDIA H200 139.2G/140.0G" (free/total) each, or "-". */
export function devicesText (m: MemberJson): string {
  return (m.devices ?? []).map((d) => `${d.backend} ${d.name} ${gib(d.freeBytes)}/${gib(d.totalBytes)}`).join(', ') || '-'
}

function row (m: MemberJson, selfId: string): string[] {
  const extra = m.addresses.length > 1 ? ` +${m.addresses.length - 1}` : ''
  const first = m.addresses[0]?.replace(/\/p2p\/[^/]+$/, '')
  return [
    `${m.peerId === selfId ? '*' : ' '}${m.name}`,
    shortPeerId(m.peerId),
    m.state,
    `${first ?? '-'}${extra}`,
    m.httpUrl,
    m.peerId === selfId ? 'self' : m.rttMs !== undefined ? `${m.rttMs.toFixed(2)}ms` : '-',
    `${gib(m.capabilities.memoryBudgetBytes)}/${gib(m.capabilities.freeMemoryBytes)}`,
    m.capabilities.backend,
    devicesText(m),
    m.models.map((x) => x.id).join(',') || '-',
    shardsText(m),
    m.peerId === selfId ? 'now' : `${(m.lastSeenMsAgo / 1000).toFixed(1)}s ago`
  ]
}

/** Layer ranges a member holds, each once (a range can serve the old and the new plan during a change); … = loading. */
function shardsText (m: MemberJson): string {
  const byRange = new Map<string, boolean>()
  for (const s of m.shards) {
    const key = `${s.model}[${s.start},${s.end})`
    byRange.set(key, (byRange.get(key) ?? false) || s.ready)
  }
  return [...byRange].map(([k, ready]) => `${k}${ready ? '' : '…'}`).join(',') || '-'
}

/** One line about the plan: its stages in ring order, or why there is none. */
export function planLine (state: ClusterStateJson): string | undefined {
  const p = state.plan
  if (p === undefined) return undefined
  if (p === null) return `no plan${state.planReason !== undefined ? `: ${state.planReason}` : ''}`
  const stages = p.stages.map((s) => `${s.name}[${s.start},${s.end})${(s.gpuLayers ?? 0) > 0 ? `(${s.gpuLayers} on GPU)` : ''}${s.ready ? '' : '…'}`).join(' → ')
  return `plan ${p.id.slice(0, 12)} (${p.model}) ${p.ready ? 'ready' : 'not ready'}: ${stages} · predicted ${p.predictedMsPerToken.toFixed(2)} ms/token`
}

export function formatPeersTable (state: ClusterStateJson): string {
  const header = ['NAME', 'ID', 'STATE', 'ADDRESSES', 'HTTP', 'RTT', 'MEM budget/free', 'BACKEND', 'GPUS free/total', 'MODELS', 'SHARDS', 'LAST SEEN']
  const rows = [header, ...state.members.map((m) => row(m, state.self.peerId))]
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd())
  return [
    ...lines,
    '',
    `${state.members.length} member(s) · view ${state.viewHash.slice(0, 12)} · * = this node (${state.self.name})`,
    ...(planLine(state) !== undefined ? [planLine(state)!] : [])
  ].join('\n')
}
