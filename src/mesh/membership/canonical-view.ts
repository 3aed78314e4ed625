import { createHash } from 'node:crypto'
import { memoryBudgetMiB, quantise125 } from './quantise.js'
import type { ViewState } from './view.js'

/**
 * The canonical view every node must agree on (protocols/membership.md "Canonical view and view hash").
 * Leaves out what changes at each announcement; numbers are quantised. Pure.
 */
export interface CanonicalMember {
  peerId: string
  name: string
  httpUrl: string
  addresses: string[]
  memoryBudgetMiB: number
  cpuCores: number
  backend: string
  computeClass: number
  models: Array<[string, number]>
  shards: Array<[string, number, number, string]>
  links: Array<[string, number]>
}

export interface CanonicalView { v: 1, members: CanonicalMember[] }

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

export function canonicalView (state: ViewState): CanonicalView {
  const ids = [...state.members.keys()].sort(byString)
  const present = new Set(ids)
  const members = ids.map((id): CanonicalMember => {
    const a = state.members.get(id)!.announcement // eslint-disable-line @typescript-eslint/no-non-null-assertion
    return {
      peerId: a.peerId,
      name: a.name,
      httpUrl: a.httpUrl,
      addresses: [...a.addresses].sort(byString),
      memoryBudgetMiB: memoryBudgetMiB(a.capabilities.memoryBudgetBytes),
      cpuCores: a.capabilities.cpuCores,
      backend: a.capabilities.backend,
      computeClass: quantise125(a.capabilities.computeMsPerUnit),
      models: a.models.map((m): [string, number] => [m.id, m.sizeBytes]).sort((x, y) => byString(x[0], y[0]) || x[1] - y[1]),
      shards: a.shards
        .map((s): [string, number, number, string] => [s.model, s.start, s.end, s.planId ?? ''])
        .sort((x, y) => byString(x[0], y[0]) || x[1] - y[1] || x[2] - y[2] || byString(x[3], y[3])),
      links: a.links
        .filter((l) => present.has(l.peerId) && l.peerId !== id)
        .map((l): [string, number] => [l.peerId, l.rttClassMs])
        .sort((x, y) => byString(x[0], y[0]))
    }
  })
  return { v: 1, members }
}

/** Lowercase hex SHA-256 of the canonical view's JSON (keys in declaration order, no whitespace). */
export function viewHash (view: CanonicalView): string {
  return createHash('sha256').update(JSON.stringify(view)).digest('hex')
}
