import type { NodeId } from '../shared/ids.js'
import type { NoPlan, Plan, PlanAction } from './types.js'

/**
 * What node `self` must do to go from `old` to `next`: load its new range first, then unload the
 * old one (make before break). Same model and same range → nothing to do.
 */
export function diffPlans (old: Plan | NoPlan | undefined, next: Plan | NoPlan | undefined, self: NodeId): PlanAction[] {
  const mine = (p: Plan | NoPlan | undefined): { p: Plan, start: number, end: number } | undefined => {
    if (p?.kind !== 'plan') return undefined
    const s = p.stages.find((x) => x.peerId === self)
    return s === undefined ? undefined : { p, start: s.start, end: s.end }
  }
  const a = mine(old)
  const b = mine(next)
  if (a !== undefined && b !== undefined && a.p.modelId === b.p.modelId && a.start === b.start && a.end === b.end) return []
  const actions: PlanAction[] = []
  if (b !== undefined) actions.push({ kind: 'load', modelId: b.p.modelId, start: b.start, end: b.end, isFirst: b.start === 0, isLast: b.end === b.p.nLayers })
  if (a !== undefined) actions.push({ kind: 'unload', modelId: a.p.modelId, start: a.start, end: a.end })
  return actions
}
