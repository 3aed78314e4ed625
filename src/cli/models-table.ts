import { formatBytes } from './pull-progress.js'
import type { ClusterStateJson } from '../shared/cluster-state.js'
import type { CatalogueEntry } from '../node/model-catalogue.js'

/** Node names per model id, from a node's `/cluster/state` (every member's announced models). */
export function holdersById (state: ClusterStateJson): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const m of state.members) {
    for (const model of m.models) out.set(model.id, [...(out.get(model.id) ?? []), m.name])
  }
  return out
}

/** Rows of `exo-p2p models --json`: `nodes` is null when no node could be asked. */
export function modelsJson (entries: CatalogueEntry[], holders: Map<string, string[]> | undefined): Array<Record<string, unknown>> {
  return entries.map((e) => ({
    id: e.id, architecture: e.architecture ?? null, quant: e.quant ?? null, sizeBytes: e.sizeBytes, layers: e.layers ?? null,
    nodes: holders === undefined ? null : holders.get(e.id) ?? [], source: e.source, repo: e.repo ?? null, paths: e.paths,
    ...(e.error !== undefined ? { error: e.error } : {})
  }))
}

/** The table `exo-p2p models` prints; models only the mesh holds (not this machine) get their own rows. */
export function formatModelsTable (entries: CatalogueEntry[], holders: Map<string, string[]> | undefined): string {
  const rows = [['ID', 'ARCH', 'QUANT', 'SIZE', 'LAYERS', 'NODES', 'SOURCE']]
  for (const e of entries) {
    rows.push([e.id, e.architecture ?? '?', e.quant ?? '?', formatBytes(e.sizeBytes), e.layers === undefined ? '?' : String(e.layers),
      holders === undefined ? '(no node)' : (holders.get(e.id) ?? []).join(',') || '-', e.source === 'hub' && e.repo !== undefined ? e.repo : e.source])
  }
  if (holders !== undefined) {
    for (const [id, nodes] of [...holders.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (!entries.some((e) => e.id === id)) rows.push([id, '', '', '', '', nodes.join(','), 'mesh'])
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n')
}
