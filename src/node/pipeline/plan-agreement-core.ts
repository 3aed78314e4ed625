import { plan as computePlan } from '../../planner/index.js'
import type { ModelCard, NoPlan, Plan, PlannerDevice, PlannerMember, PlannerView } from '../../planner/index.js'
import { PlannerInputError } from '../../shared/errors/planner-errors.js'
import { asModelId, asNodeId, asPlanId } from '../../shared/ids.js'
import type { NodeId } from '../../shared/ids.js'
import type { AnnouncedPlan, Announcement } from '../../mesh/membership/announcement.js'
import type { ViewState } from '../../mesh/membership/view.js'

/**
 * Pure core of shard plan agreement (protocols/membership.md "Shard plan agreement"): from the
 * membership view (and the plan this node served last), what it proposes, which plan serves requests, and
 * which stages it must hold. No clock, no I/O.
 */

/** Whether the member holds the whole file of `modelId` (its `models`). */
export function holdsModel (a: Announcement, modelId: string): boolean {
  return a.models.some((m) => m.id === modelId)
}

/**
 * Members that take part in plans for `modelId`: they serve it, measured their speed, use the same
 * attention kernels (`flashAttention`, default true), and hold it on disk — or lack it while some
 * member holds it (they fetch their layers from the holders, protocols/weights.md).
 */
export function participants (view: ViewState, modelId: string, flashAttention = true): Announcement[] {
  const out: Announcement[] = []
  const anyHolder = [...view.members.values()].some(({ announcement: a }) => holdsModel(a, modelId))
  if (!anyHolder) return out
  for (const { announcement: a } of view.members.values()) {
    const p = a.pipeline
    if (p === undefined || p.model !== modelId || !(p.msPerLayer > 0) || (p.flashAttention ?? true) !== flashAttention) continue
    out.push(a)
  }
  return out.sort((x, y) => (x.peerId < y.peerId ? -1 : x.peerId > y.peerId ? 1 : 0))
}

/**
 * Bandwidth from the best holder of `modelId` to `a`, bytes/s (0 = not measured): the larger of the
 * two directions' measurements of each link (announced `links[].bandwidthBytesPerSec`).
 */
export function fetchBandwidth (view: ViewState, a: Announcement, modelId: string): number {
  let best = 0
  for (const { announcement: h } of view.members.values()) {
    if (h.peerId === a.peerId || !holdsModel(h, modelId)) continue
    const bw = Math.max(h.links.find((l) => l.peerId === a.peerId)?.bandwidthBytesPerSec ?? 0, a.links.find((l) => l.peerId === h.peerId)?.bandwidthBytesPerSec ?? 0)
    best = Math.max(best, bw)
  }
  return best
}

/**
 * The device a member offloads to, for the planner: the first announced device with a measured speed
 * (the engine measures only the one it uses, `--gpu-device`); its budget, never its sampled free memory.
 */
export function plannerDevice (a: Announcement): PlannerDevice | undefined {
  const d = a.devices?.find((x) => x.computeMsPerLayer > 0)
  if (d === undefined) return undefined
  return { budgetBytes: d.budgetBytes, computeMsPerLayer: d.computeMsPerLayer, ...(d.maxLayers !== undefined ? { maxLayers: d.maxLayers } : {}) }
}

/**
 * The planner's input: participants' budgets and speeds, link RTTs = the publishers' quantised classes;
 * a participant that lacks the file gets `fetchBytesPerSec` (its load time is shown in the plan).
 */
export function plannerViewFor (view: ViewState, modelId: string, flashAttention = true): PlannerView {
  const members = participants(view, modelId, flashAttention)
  const ids = new Set(members.map((m) => m.peerId))
  const rttMs: Record<string, Record<string, number>> = {}
  const list: PlannerMember[] = members.map((a) => {
    const row: Record<string, number> = {}
    for (const l of a.links) if (ids.has(l.peerId) && l.peerId !== a.peerId) row[l.peerId] = l.rttClassMs
    rttMs[a.peerId] = row
    const fetch = holdsModel(a, modelId) ? {} : { fetchBytesPerSec: fetchBandwidth(view, a, modelId) }
    const device = plannerDevice(a)
    return { peerId: asNodeId(a.peerId), name: a.name, memoryBudgetBytes: a.capabilities.memoryBudgetBytes, computeMsPerLayer: a.pipeline!.msPerLayer, ...fetch, ...(device !== undefined ? { device } : {}) }
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
  /** the plan this node served last round (make before break: it keeps serving while a new one loads) */
  serving: Plan | undefined
  /** this node's attention setting: it plans only with nodes of the same. Default true */
  flashAttention?: boolean
}

export interface AgreementDecision {
  /**
   * the planner's `previous`: the ready plan most members propose (ties: smallest id), a function of
   * the gossiped state alone, so every node with the same view plans from the same previous plan
   */
  previous: Plan | undefined
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
 *
 * Why `previous` comes from the view and not from this node's memory: two nodes that remembered
 * different plans of the same stage assignment (ids differ when their inputs did) would each keep
 * theirs by hysteresis forever. Derived from the view, `previous` is the same on every node.
 */
export function decide (input: AgreementInput, planner: PlanFunction = computePlan): AgreementDecision {
  const { view, card } = input
  const plannerView = plannerViewFor(view, card.id, input.flashAttention ?? true)
  const group = new Set<string>(plannerView.members.map((m) => m.peerId))
  const previous = readyPlansInView(view, card.id).find((p) => p.stages.every((s) => group.has(s.peerId)))
  let proposal: Plan | NoPlan
  try {
    proposal = planner(plannerView, card, previous)
  } catch (err) {
    if (!(err instanceof PlannerInputError)) throw err
    proposal = { kind: 'none', modelId: card.id, reason: `cannot plan ${card.id}: ${err.message}`, neededBytes: 0, offeredBytes: 0 }
  }
  const last = input.serving
  const serving = proposal.kind === 'plan' && isPlanReady(proposal, view)
    ? proposal
    : last !== undefined && last.modelId === card.id && isPlanReady(last, view) ? last : previous
  let reason: string | undefined
  if (serving === undefined) {
    if (proposal.kind === 'none') reason = proposal.reason
    else {
      const ready = stageReadiness(proposal, view)
      const waiting = proposal.stages.filter((_, i) => ready[i] !== true).map((s) => `${s.name} (layers ${s.start}–${s.end - 1})`)
      reason = `plan ${proposal.id.slice(0, 12)} for ${card.id} is not ready yet: waiting for ${waiting.join(', ')} to load and agree`
    }
  }
  return { previous, proposal, serving, reason }
}

/** This node's stage in `p`: index and range, or undefined when it takes no part. */
export function stageOf (p: Plan, self: NodeId | string): { index: number, start: number, end: number } | undefined {
  const index = p.stages.findIndex((s) => s.peerId === self)
  if (index < 0) return undefined
  const s = p.stages[index]!
  return { index, start: s.start, end: s.end }
}
