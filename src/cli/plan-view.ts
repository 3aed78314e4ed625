import type { ClusterStateJson } from '../shared/cluster-state.js'
import { shortPeerId } from './peers-table.js'

/** `exo-p2p plan --json`: at least `id`, `stages` (array) and `ready` (boolean); `id` null when there is no plan. */
export interface PlanCliJson {
  id: string | null
  model: string | null
  ready: boolean
  predictedMsPerToken: number | null
  measuredMsPerToken: number | null
  stages: Array<{ index: number, peerId: string, name: string, start: number, end: number, layers: number, ready: boolean, predictedMs: number | null, gpuLayers: number, fetch: { bytes: number, loadMs?: number, verifiedBytes: number, targetBytes: number } | null }>
  reason: string | null
  /** the node that answered */
  node: string
}

/** The plan part of GET /cluster/state as `exo-p2p plan --json` prints it. Pure. */
export function planCliJson (state: ClusterStateJson): PlanCliJson {
  const p = state.plan ?? null
  return {
    id: p?.id ?? null,
    model: p?.model ?? null,
    ready: p?.ready ?? false,
    predictedMsPerToken: p?.predictedMsPerToken ?? null,
    measuredMsPerToken: p?.measuredMsPerToken ?? null,
    stages: (p?.stages ?? []).map((s, index) => ({ index, peerId: s.peerId, name: s.name, start: s.start, end: s.end, layers: s.end - s.start, ready: s.ready, predictedMs: s.predictedMs ?? null, gpuLayers: s.gpuLayers ?? 0, fetch: s.fetch ?? null })),
    reason: state.planReason ?? (state.plan === undefined ? 'this node runs no pipeline (no model to serve)' : null),
    node: state.self.name
  }
}

/** "fetching 42% of 21.0 MB from peers (predicted 3.1 s)" */
function fetchText (f: NonNullable<PlanCliJson['stages'][number]['fetch']>): string {
  const pct = Math.floor(100 * f.verifiedBytes / Math.max(1, f.targetBytes))
  return `fetching ${pct}% of ${(f.targetBytes / 1e6).toFixed(1)} MB from peers${f.loadMs !== undefined ? ` (predicted ${(f.loadMs / 1000).toFixed(1)} s)` : ''}`
}

/** Human-readable `exo-p2p plan`. Pure. */
export function formatPlan (state: ClusterStateJson): string {
  const j = planCliJson(state)
  if (j.id === null) return `No shard plan (asked ${j.node}): ${j.reason ?? 'unknown reason'}`
  const header = ['STAGE', 'NODE', 'ID', 'LAYERS', 'PREDICTED', 'READY']
  const rows = [header, ...j.stages.map((s) => [
    String(s.index),
    `${s.peerId === state.self.peerId ? '*' : ' '}${s.name}`,
    shortPeerId(s.peerId),
    `[${s.start}, ${s.end}) ${s.layers} layer${s.layers === 1 ? '' : 's'}${s.gpuLayers > 0 ? `, ${s.gpuLayers} on GPU` : ''}`,
    s.predictedMs === null ? '-' : `${s.predictedMs.toFixed(3)} ms`,
    s.ready ? 'yes' : s.fetch !== null ? fetchText(s.fetch) : 'loading'
  ])]
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  const measured = j.measuredMsPerToken !== null ? ` · measured ${j.measuredMsPerToken.toFixed(2)} ms/token` : ''
  return [
    `plan ${j.id} for ${j.model ?? '?'}: ${j.ready ? 'READY' : 'NOT READY'} · ${j.stages.length} stage(s) · predicted ${(j.predictedMsPerToken ?? 0).toFixed(2)} ms/token${measured}`,
    ...(j.reason !== null ? [`  ${j.reason}`] : []),
    '',
    ...rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()),
    '',
    `ring: ${j.stages.map((s) => s.name).join(' → ')} → ${j.stages[0]?.name ?? ''} · * = ${j.node} (the node asked)`
  ].join('\n')
}
