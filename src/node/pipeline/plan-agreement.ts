import { createLogger } from '../../shared/log.js'
import { ActivationErrorCode, ActivationStageError } from '../../shared/errors/protocol-errors.js'
import type { PlanJson } from '../../shared/cluster-state.js'
import { plan as computePlan } from '../../planner/index.js'
import type { ModelCard, NoPlan, Plan, PlannerView } from '../../planner/index.js'
import type { ActivationChannel, ActivationsPort, OpenFrame } from '../../protocols/activations/index.js'
import type { ViewState } from '../../mesh/membership/view.js'
import type { LocalInfo } from '../../mesh/membership/membership-service.js'
import type { ShardEngine } from '../shard-engine.js'
import { probeLayerSpeed } from './capability-probe.js'
import type { GpuOffload } from '../gpu-offload.js'
import { decide, isPlanReady, stageOf, stageReadiness } from './plan-agreement-core.js'
import type { AgreementDecision } from './plan-agreement-core.js'
import { PipelineMetrics } from './pipeline-metrics.js'
import { StageHandles } from './stage-handles.js'
import type { ServedModel, StageHandle, StageHandlesInit } from './stage-handles.js'
import type { HopChannel } from './stage-runner.js'

const log = createLogger('node:plan-agreement')

export interface PlanAgreementInit {
  selfId: string
  model: ServedModel
  card: ModelCard
  engine: ShardEngine
  threads: number
  flashAttention: boolean
  view: () => ViewState
  announceSoon: () => void
  dialNext: (peerId: string, open: OpenFrame, signal: AbortSignal) => Promise<HopChannel>
  /** skip the probe and use this speed (tests) */
  msPerLayer?: number
  /** agreement round interval. Default 250 ms. */
  tickMs?: number
  /** a plan no longer wanted keeps serving this long (others switch meanwhile). Default 3000 ms. */
  releaseGraceMs?: number
  /** this node's memory budget (`--memory-budget`): its ranges held at once never need more */
  memoryBudgetBytes?: number
  /** fetches a range's bytes from peers before it is loaded (the node lacks the model file) */
  prepareRange?: (range: { start: number, end: number }, signal: AbortSignal) => Promise<void>
  /** GPU offload (`--gpu-layers`): the probe also times a layer on the device; stages offload their last layers */
  gpu?: GpuOffload
  /** the device probe's result, ms per layer (announced as the device's computeMsPerLayer) */
  onDeviceSpeed?: (msPerLayer: number) => void
  serving?: Pick<StageHandlesInit, 'maxSessionsPerStage' | 'prefixCacheBytes'> // --max-sequences, --prefix-cache-mb
}

/** What the first stage of a request holds while it drives it; `release()` when the request ends. */
export interface FirstStageLease {
  plan: Plan
  handle: StageHandle
  release: () => void
}

/**
 * Leaderless shard plan agreement on one node (protocols/membership.md "Shard plan agreement"):
 * measures this node's speed, computes the plan every round from the membership view (pure core in
 * plan-agreement-core.ts), loads/releases this node's stages (make before break), announces readiness
 * through the `pipeline` and `shards` announcement fields, and dispatches inbound activation streams
 * to the stage of the plan they name.
 */
export class PlanAgreement implements ActivationsPort {
  readonly metrics = new PipelineMetrics()
  readonly stages: StageHandles
  private msPerLayer = 0
  private decision: AgreementDecision | undefined
  private timer: NodeJS.Timeout | undefined
  private probing: Promise<void> | undefined
  private firstReadyAt: number | undefined
  private started = false
  private probeRunning = false
  private readonly startedAt = performance.now()
  private memo: { key: string, result: Plan | NoPlan } | undefined
  /** this node's range in proposals that do not fit next to its held ranges, since when (node clock ms) */
  private memoryBlocked: { range: string, since: number } | undefined
  /** the planner, recomputed only when its input (view, previous plan) changed: rounds run every 250 ms */
  private readonly planner = (view: PlannerView, card: ModelCard, previous?: Plan): Plan | NoPlan => {
    const key = JSON.stringify([view, card.id, previous?.id ?? null])
    if (this.memo?.key !== key) this.memo = { key, result: computePlan(view, card, previous) }
    return this.memo.result
  }

  constructor (private readonly init: PlanAgreementInit) {
    this.stages = new StageHandles({
      model: init.model,
      engine: init.engine,
      threads: init.threads,
      flashAttention: init.flashAttention,
      selfId: init.selfId,
      dialNext: init.dialNext,
      ...(init.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: init.memoryBudgetBytes } : {}),
      ...(init.prepareRange !== undefined ? { prepareRange: init.prepareRange } : {}),
      ...(init.gpu !== undefined ? { gpu: init.gpu } : {}), ...init.serving,
      onStageCompute: this.metrics.onStageCompute,
      onChange: () => { this.init.announceSoon(); setTimeout(() => { this.tick() }, 80).unref() }
    })
  }

  get modelId (): string { return this.init.model.id }
  get model (): ServedModel { return this.init.model }

  /** Starts the rounds; the speed probe runs first (the node takes part once it has a speed). */
  start (): void {
    if (this.started) return
    this.started = true
    this.probing = this.probe()
    this.timer = setInterval(() => { this.tick() }, this.init.tickMs ?? 250)
    this.timer.unref()
  }

  private async probe (): Promise<void> {
    if (this.init.msPerLayer !== undefined) { this.msPerLayer = this.init.msPerLayer; this.init.announceSoon(); return }
    this.probeRunning = true
    try {
      const r = await probeLayerSpeed(this.init.engine, { modelPath: this.init.model.path, threads: this.init.threads, flashAttention: this.init.flashAttention })
      this.msPerLayer = r.msPerLayer
      log.info({ model: this.init.model.id, msPerLayer: r.msPerLayer, layer: r.layer, probeMs: Math.round(r.probeMs) }, 'measured decode speed')
      if (this.init.gpu !== undefined) {
        const d = await probeLayerSpeed(this.init.engine, { modelPath: this.init.model.path, threads: this.init.threads, flashAttention: this.init.flashAttention, onDevice: true })
        log.info({ model: this.init.model.id, msPerLayer: d.msPerLayer, layer: d.layer, probeMs: Math.round(d.probeMs) }, 'measured decode speed on the GPU device')
        this.init.onDeviceSpeed?.(d.msPerLayer)
      }
      this.init.announceSoon()
    } catch (err) {
      log.error({ err, model: this.init.model.id }, 'speed probe failed: this node takes no part in plans')
    } finally {
      this.probeRunning = false
      this.tick()
    }
  }

  async stop (): Promise<void> {
    this.started = false
    clearInterval(this.timer)
    await this.probing
    await this.stages.dispose()
  }

  /** One agreement round; runs from timers, so a failure is logged and the next round tries again. */
  tick (): void {
    if (!this.started) return
    try {
      this.round()
    } catch (err) {
      /** a timer callback must not throw: that would end the process and every request it serves */
      log.error({ err: (err as Error).message }, 'plan agreement round failed')
    }
  }

  /** Decide, then load what is wanted and release what is idle and unwanted. */
  private round (): void {
    const view = this.init.view()
    const d = decide({ view, card: this.init.card, serving: this.decision?.serving, flashAttention: this.init.flashAttention }, this.planner)
    if (d.proposal.kind === 'plan' && d.proposal.id !== (this.decision?.proposal.kind === 'plan' ? this.decision.proposal.id : undefined)) {
      log.info({ plan: d.proposal.id.slice(0, 12), stages: d.proposal.stages.map((s) => `${s.name}[${s.start},${s.end})`).join(' → '), predictedMsPerToken: d.proposal.predictedMsPerToken }, 'proposing plan')
      this.init.announceSoon()
    }
    if (d.serving !== undefined && this.decision?.serving?.id !== d.serving.id) {
      this.firstReadyAt ??= performance.now()
      log.info({ plan: d.serving.id.slice(0, 12), sinceStartMs: Math.round(performance.now() - this.startedAt) }, 'plan ready: serving requests')
    }
    this.decision = d
    const now = performance.now()
    const p = d.proposal
    if (p.kind === 'plan' && this.stages.blockedByMemory(p)) {
      // make before break does not fit this node's budget: break first. Requests on the old ranges
      // fail over (mesh-inference-service.ts) and resume once the new plan is ready. A stage of a plan
      // that still serves is kept for the grace period, so a proposal of a view in flux (which may
      // never be agreed) does not take a working plan down; a plan that lost a stage goes at once.
      // keyed by this node's range, not the plan id: ids change with every RTT class change of a view in
      // flux, and a grace restarted with each id never ends (seen after a partition healed on a loaded host)
      const mine = stageOf(p, this.init.selfId)
      const range = mine === undefined ? p.id : `${mine.start}-${mine.end}`
      if (this.memoryBlocked?.range !== range) this.memoryBlocked = { range, since: now }
      const graceOver = now - this.memoryBlocked.since >= (this.init.releaseGraceMs ?? 3000)
      for (const h of [...this.stages.handles.values()]) {
        if (h.plan.id === p.id || (!graceOver && isPlanReady(h.plan, view))) continue
        log.warn({ plan: h.plan.id.slice(0, 12), stage: h.index, next: p.id.slice(0, 12) }, 'releasing a stage before loading the next plan\'s range: the memory budget cannot hold both')
        this.stages.release(h)
        this.init.announceSoon()
      }
    } else {
      this.memoryBlocked = undefined
    }
    const wanted = new Set<string>()
    for (const p of [d.proposal, d.serving]) {
      if (p?.kind !== 'plan') continue
      if (this.stages.ensure(p, now) !== undefined) wanted.add(p.id)
    }
    for (const h of [...this.stages.handles.values()]) {
      if (wanted.has(h.plan.id)) { h.unwantedSince = undefined; continue }
      h.unwantedSince ??= now
      if (now - h.unwantedSince >= (this.init.releaseGraceMs ?? 3000) && this.stages.isIdle(h)) {
        log.info({ plan: h.plan.id.slice(0, 12), stage: h.index }, 'releasing stage of an old plan')
        this.stages.release(h)
        this.init.announceSoon()
      }
    }
  }

  /** The plan that serves requests now (from this node's view), or why there is none. */
  serving (): { plan: Plan | undefined, reason: string | undefined } {
    if (this.decision === undefined) return { plan: undefined, reason: 'the node is starting' }
    const reason = this.decision.reason ?? undefined
    if (this.msPerLayer === 0 && this.decision.serving === undefined) return { plan: undefined, reason: `${reason ?? ''}${reason !== undefined ? '; ' : ''}this node is still measuring its speed` }
    return { plan: this.decision.serving, reason }
  }

  /**
   * The serving plan, waiting up to `timeoutMs` while one is on its way (speed probe running, or a
   * plan proposed whose stages are loading); at once when no plan fits (`noPlan`).
   */
  async waitForServing (signal: AbortSignal, timeoutMs: number): Promise<{ plan: Plan | undefined, reason: string | undefined, noPlan: boolean }> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const { plan, reason } = this.serving()
      const measuring = this.msPerLayer === 0 && this.probeRunning
      const noPlan = this.decision?.proposal.kind === 'none' && !measuring
      if (plan !== undefined || noPlan || performance.now() >= deadline || signal.aborted) return { plan, reason, noPlan }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /**
   * Stage 0 of a ready plan on this node, held until `release()`: the serving plan when this node is
   * its first stage, else any ready plan this node is first stage of (another node may route by a
   * slightly newer or older view).
   */
  leaseFirstStage (): FirstStageLease | undefined {
    const view = this.init.view()
    const serving = this.decision?.serving
    const candidates = [...this.stages.handles.values()].filter((h) => h.index === 0 && h.ready && h.shard !== undefined)
    const h = candidates.find((c) => c.plan.id === serving?.id) ?? candidates.find((c) => isPlanReady(c.plan, view))
    if (h === undefined) return undefined
    h.inflight++
    h.leases++
    let done = false
    return { plan: h.plan, handle: h, release: () => { if (!done) { done = true; h.inflight--; h.leases-- } } }
  }

  async serve (open: OpenFrame, channel: ActivationChannel, context: { remotePeer: string, signal: AbortSignal }): Promise<void> {
    const h = this.stages.handles.get(open.planId)
    if (h === undefined) throw new ActivationStageError(ActivationErrorCode.PlanMismatch, `plan ${open.planId.slice(0, 12)}… is not held by this node`)
    if (!h.ready) throw new ActivationStageError(ActivationErrorCode.NotReady, `plan ${open.planId.slice(0, 12)}…: layers ${h.start}–${h.end - 1} are still loading`)
    h.inflight++
    try {
      if (open.toStage === 0) {
        if (h.returnHops === undefined) throw new ActivationStageError(ActivationErrorCode.StageMismatch, `OPEN for stage 0; this node is stage ${h.index}`)
        await h.returnHops.serve(open, channel, context)
      } else {
        if (h.runner === undefined) throw new ActivationStageError(ActivationErrorCode.StageMismatch, `OPEN for stage ${open.toStage}; this node is stage ${h.index}`)
        await h.runner.serve(open, channel, context)
      }
    } finally {
      h.inflight--
    }
  }

  /** Announcement fields (protocols/membership.md "pipeline" and "shards"). */
  pipelineInfo (): NonNullable<LocalInfo['pipeline']> {
    const p = this.decision?.proposal
    return { model: this.init.model.id, msPerLayer: this.msPerLayer, flashAttention: this.init.flashAttention, ...(p?.kind === 'plan' ? { plan: p } : {}) }
  }

  shardsInfo (): LocalInfo['shards'] {
    return [...this.stages.handles.values()].map((h) => ({ model: this.init.model.id, start: h.start, end: h.end, ready: h.ready, planId: h.plan.id }))
  }

  get computeMsPerLayer (): number { return this.msPerLayer }

  /** `plan` / `planReason` of GET /cluster/state: the serving plan, else the proposal (not ready). */
  planJson (): { plan: PlanJson | null, planReason?: string } {
    const d = this.decision
    const { reason } = this.serving()
    const p = d?.serving ?? (d?.proposal.kind === 'plan' ? d.proposal : undefined)
    if (p === undefined) return { plan: null, ...(reason !== undefined ? { planReason: reason } : {}) }
    const view = this.init.view()
    const ready = stageReadiness(p, view)
    const json: PlanJson = {
      id: p.id,
      model: p.modelId,
      ready: d?.serving?.id === p.id,
      predictedMsPerToken: p.predictedMsPerToken,
      ...(this.metrics.ring.count > 0 ? { measuredMsPerToken: this.metrics.ring.sumMs / this.metrics.ring.count + this.metrics.decodeMs('first') } : {}),
      stages: p.stages.map((s, i) => {
        const partial = view.members.get(s.peerId)?.announcement.partials?.find((x) => x.id === p.modelId)
        const fetch = s.fetchBytes === undefined
          ? undefined
          : { bytes: s.fetchBytes, ...(s.loadMs !== undefined ? { loadMs: s.loadMs } : {}), verifiedBytes: partial?.verifiedBytes ?? 0, targetBytes: partial?.targetBytes ?? s.fetchBytes }
        const progress = fetch !== undefined && ready[i] !== true ? { loadProgress: Math.min(1, fetch.verifiedBytes / Math.max(1, fetch.targetBytes)) } : {}
        return { peerId: s.peerId, name: s.name, start: s.start, end: s.end, ready: ready[i] === true, predictedMs: s.computeMs, ...progress, ...(fetch !== undefined ? { fetch } : {}),
          ...(s.gpuLayers !== undefined && s.gpuLayers > 0 ? { gpuLayers: s.gpuLayers, deviceBytes: s.deviceBytes ?? 0 } : {}) }
      })
    }
    return { plan: json, ...(reason !== undefined ? { planReason: reason } : {}) }
  }

  /** ms from construction to the first ready plan (undefined until then). */
  get msToFirstReadyPlan (): number | undefined { return this.firstReadyAt === undefined ? undefined : this.firstReadyAt - this.startedAt }
}
