import { plan as computePlan } from '../../planner/index.js'
import type { ModelCard, NoPlan, Plan, PlannerMember, PlannerView } from '../../planner/index.js'
import { PlannerInputError } from '../../shared/errors/planner-errors.js'
import { asModelId, asNodeId, asPlanId } from '../../shared/ids.js'
import type { NodeId } from '../../shared/ids.js'
import type { AnnouncedPlan, Announcement } from '../../mesh/membership/announcement.js'
import type { ViewState } from '../../mesh/membership/view.js'

/**
 * Pure core of shard plan agreement (protocols/membership.md "Shard plan agreement"): from the
 * membership view and the plan this node adopted, what it proposes, which plan serves requests, and
 * which stages it must hold. No clock, no I/O.
 */

/** Members that take part in plans for `modelId`: they serve it, hold it on disk and measured their speed. */
export function participants (view: ViewState, modelId: string): Announcement[] {
  const out: Announcement[] = []
  for (const { announcement: a } of view.members.values()) {
    const p = a.pipeline
    if (p === undefined || p.model !== modelId || !(p.msPerLayer > 0)) continue
    if (!a.models.some((m) => m.id === modelId)) continue
    out.push(a)
  }
  return out.sort((x, y) => (x.peerId < y.peerId ? -1 : x.peerId > y.peerId ? 1 : 0))
}

/** The planner's input: participants' budgets and speeds, link RTTs = the publishers' quantised classes. */
export function plannerViewFor (view: ViewState, modelId: string): PlannerView {
  const members = participants(view, modelId)
  const ids = new Set(members.map((m) => m.peerId))
  const rttMs: Record<string, Record<string, number>> = {}
  const list: PlannerMember[] = members.map((a) => {
    const row: Record<string, number> = {}
    for (const l of a.links) if (ids.has(l.peerId) && l.peerId !== a.peerId) row[l.peerId] = l.rttClassMs
    rttMs[a.peerId] = row
    return { peerId: asNodeId(a.peerId), name: a.name, memoryBudgetBytes: a.capabilities.memoryBudgetBytes, computeMsPerLayer: a.pipeline!.msPerLayer }
  })
  return { members: list, rttMs }
}

/** A plan received in an announcement, typed as the planner's. */
export function planFromWire (p: AnnouncedPlan): Plan {
  return {
    kind: 'plan',
    id: asPlanId(p.id),
    modelId: asModelId(p.modelId),
    nLayers: p.nLayers,
    stages: p.stages.map((s) => ({ ...s, peerId: asNodeId(s.peerId) })),
    predictedMsPerToken: p.predictedMsPerToken,
    ringRttMs: p.ringRttMs
  }
}

/** Per stage: its member announces a ready shard with the stage's range and this plan's id. */
export function stageReadiness (p: Plan, view: ViewState): boolean[] {
  return p.stages.map((s) => {
    const a = view.members.get(s.peerId)?.announcement
    return a?.shards.some((x) => x.ready && x.planId === p.id && x.model === p.modelId && x.start === s.start && x.end === s.end) === true
  })
}

export function isPlanReady (p: Plan, view: ViewState): boolean {
  return stageReadiness(p, view).every((r) => r)
}

/** Ready plans for `modelId` proposed in the view, most proposed first (ties: smallest id). */
export function readyPlansInView (view: ViewState, modelId: string): Plan[] {
  const byId = new Map<string, { plan: Plan, votes: number }>()
  for (const { announcement: a } of view.members.values()) {
    const wire = a.pipeline?.plan
    if (wire === undefined || wire.modelId !== modelId) continue
    const hit = byId.get(wire.id)
    if (hit !== undefined) { hit.votes++; continue }
    byId.set(wire.id, { plan: planFromWire(wire), votes: 1 })
  }
  return [...byId.values()]
    .filter((x) => isPlanReady(x.plan, view))
    .sort((x, y) => y.votes - x.votes || (x.plan.id < y.plan.id ? -1 : x.plan.id > y.plan.id ? 1 : 0))
    .map((x) => x.plan)
}

export interface AgreementInput {
  view: ViewState
  card: ModelCard
  /** the plan this node adopted last time (its planner `previous`) */
  adopted: Plan | undefined
}

export interface AgreementDecision {
  /** keep for the next round */
  adopted: Plan | undefined
  /** what this node computed and gossips */
  proposal: Plan | NoPlan
  /** the ready plan that serves requests now, if any */
  serving: Plan | undefined
  /** why nothing serves (for /cluster/state planReason), undefined when serving */
  reason: string | undefined
}

export type PlanFunction = (view: PlannerView, model: ModelCard, previous?: Plan) => Plan | NoPlan

/**
 * One round of agreement (see protocols/membership.md "Shard plan agreement", steps 2, 3 and 5).
 * `planner` defaults to the planner's `plan` (callers may pass a memoised one).
 */
export function decide (input: AgreementInput, planner: PlanFunction = computePlan): AgreementDecision {
  const { view, card } = input
  let adopted = input.adopted
  if (adopted !== undefined && adopted.modelId !== card.id) adopted = undefined
  if (adopted === undefined || !isPlanReady(adopted, view)) {
    adopted = readyPlansInView(view, card.id)[0] ?? adopted
  }
  let proposal: Plan | NoPlan
  try {
    proposal = planner(plannerViewFor(view, card.id), card, adopted)
  } catch (err) {
    if (!(err instanceof PlannerInputError)) throw err
    proposal = { kind: 'none', modelId: card.id, reason: `cannot plan ${card.id}: ${err.message}`, neededBytes: 0, offeredBytes: 0 }
  }
  const proposalReady = proposal.kind === 'plan' && isPlanReady(proposal, view)
  if (proposalReady) adopted = proposal as Plan
  const serving = proposalReady ? proposal as Plan : adopted !== undefined && isPlanReady(adopted, view) ? adopted : undefined
  let reason: string | undefined
  if (serving === undefined) {
    if (proposal.kind === 'none') reason = proposal.reason
    else {
      const ready = stageReadiness(proposal, view)
      const waiting = proposal.stages.filter((_, i) => ready[i] !== true).map((s) => `${s.name} (layers ${s.start}–${s.end - 1})`)
      reason = `plan ${proposal.id.slice(0, 12)} for ${card.id} is not ready yet: waiting for ${waiting.join(', ')} to load and agree`
    }
  }
  return { adopted, proposal, serving, reason }
}

/** This node's stage in `p`: index and range, or undefined when it takes no part. */
export function stageOf (p: Plan, self: NodeId | string): { index: number, start: number, end: number } | undefined {
  const index = p.stages.findIndex((s) => s.peerId === self)
  if (index < 0) return undefined
  const s = p.stages[index]!
  return { index, start: s.start, end: s.end }
}
