import type { Stream } from '@libp2p/interface'
import { ExoError, throwIfAborted } from '../../shared/errors/exo-error.js'
import { UnknownModelError } from '../../shared/errors/model-errors.js'
import { NoPlanError, NotFirstStageError, PipelineUnavailableError, PlanNotReadyError } from '../../shared/errors/pipeline-errors.js'
import { createLogger } from '../../shared/log.js'
import { asModelId } from '../../shared/ids.js'
import { Tokenizer } from '../../engine/tokenizer.js'
import { requestInference } from '../../protocols/inference/index.js'
import type { GenerationEvent, InferenceRequest, InferenceService, ModelInfo } from '../../shared/inference.js'
import type { ViewState } from '../../mesh/membership/view.js'
import { generateAsFirstStage } from './first-stage.js'
import type { PlanAgreement } from './plan-agreement.js'
import { readyPlansInView } from './plan-agreement-core.js'
import type { PipelineMetrics } from './pipeline-metrics.js'
import type { Plan } from '../../planner/index.js'
import type { HopChannel } from './stage-runner.js'
import type { OpenFrame } from '../../protocols/activations/index.js'
import type { AdmissionGate } from '../admission-gate.js'

const log = createLogger('node:mesh-inference')

export interface MeshInferenceServiceInit {
  selfId: string
  /** plan agreement for this node's model; undefined when the node holds no model to serve (it only routes) */
  agreement: PlanAgreement | undefined
  metrics: PipelineMetrics
  /** this node's models (registry on disk): countTokens, model facts, and models no plan serves */
  local: InferenceService
  /** opens `/exo-p2p/inference/1.1.0` to a peer */
  openInferenceStream: (peerId: string, signal: AbortSignal) => Promise<Stream>
  dialNext: (peerId: string, open: OpenFrame, signal: AbortSignal) => Promise<HopChannel>
  view: () => ViewState
  /** cap on KV cells per request (default: the model's context length) */
  contextSize?: number
  /** how long a request waits for a plan that is on its way (loading, measuring). Default READY_WAIT_MS. */
  readyWaitMs?: number
  /** how long a request whose pipeline broke waits for the next plan. Default FAILOVER_WAIT_MS. */
  failoverWaitMs?: number
  /** admission of the requests this node drives as first stage (the limit follows its memory) */
  admission?: AdmissionGate
}

/** A request waits this long for a plan whose stages are still loading before it fails with 503. */
export const READY_WAIT_MS = 10_000
/**
 * A request whose pipeline broke mid-generation waits this long for the next plan: detecting a dead
 * node (≤ ~5 s, protocols/membership.md), agreeing a plan without it and loading its ranges.
 */
export const FAILOVER_WAIT_MS = 30_000

/** Failures that mean "the stages asked do not (yet / any more) serve the plan the request went to". */
const PLAN_RACE_CODES = new Set(['NOT_FIRST_STAGE', 'PLAN_NOT_READY', 'ACTIVATIONS_PLAN_MISMATCH', 'ACTIVATIONS_NOT_READY', 'ACTIVATIONS_STAGE_MISMATCH'])
/** Failures of the mesh under a request (a stage or the first stage went away), not of the request. */
const STAGE_LOSS_CODES = new Set(['PROTOCOL_STREAM_ENDED', 'PROTOCOL_TIMEOUT', 'MESH_MEMBER_LOST', 'GENERATION_PIPELINE', 'ACTIVATIONS_INTERNAL', 'ACTIVATIONS_CANCELLED', 'ABORTED', 'DISPOSED', 'INTERNAL'])
/** JavaScript's own errors: bugs, never retried */
const PROGRAMMING_ERRORS = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError'])

function isPlanRace (err: unknown): boolean {
  return err instanceof ExoError && PLAN_RACE_CODES.has(err.code)
}

/**
 * A link under the request failed: a stream ended or timed out, or libp2p failed to dial or open one
 * (its errors are not ExoErrors). Nothing about the request itself: retried, and a 503 when it persists.
 */
function isLinkFailure (err: unknown): boolean {
  if (err instanceof ExoError) return err.code === 'PROTOCOL_STREAM_ENDED' || err.code === 'PROTOCOL_TIMEOUT' || err.code === 'MESH_MEMBER_LOST'
  return err instanceof Error && LIBP2P_LINK_ERRORS.test(err.name)
}
/** names of libp2p's dial, connection and stream errors (DialError, StreamResetError, UnexpectedEOFError, …) */
const LIBP2P_LINK_ERRORS = /Dial|Connection|Stream|Muxer|Timeout|EOF|Unsupported|Address|Reset|Abort/

/** A plan race, or a lost stage / connection (libp2p's dial and stream errors are not ExoErrors). */
export function isMeshFailure (err: unknown): boolean {
  if (err instanceof ExoError) return PLAN_RACE_CODES.has(err.code) || STAGE_LOSS_CODES.has(err.code)
  return err instanceof Error && !PROGRAMMING_ERRORS.has(err.name)
}

/**
 * The node's InferenceService with a mesh behind it (DESIGN.md "Pipeline"). A request for the planned
 * model goes to the ready plan's first stage: this node (it drives the pipeline itself) or another
 * node over the inference protocol, whose events stream back. Models no plan covers run on the local
 * engine as before. No ready plan → `NoPlanError` / `PlanNotReadyError` with the reason (HTTP 503).
 */
export class MeshInferenceService implements InferenceService {
  private tokenizer: Promise<Tokenizer> | undefined

  constructor (private readonly init: MeshInferenceServiceInit) {}

  private get metrics (): PipelineMetrics { return this.init.metrics }

  /**
   * Routes `req` into the mesh and survives the mesh changing under it. Before its first token, a plan
   * race (the plan changed as the request arrived) retries on the serving plan. After it — a stage or
   * the first stage died mid-generation — the request fails over (DESIGN.md "Pipeline"): it waits for
   * the next ready plan and resumes there from the tokens already streamed (`resumeTokens`: the new
   * first stage re-prefills prompt + tokens and continues), so the client's stream goes on where it
   * stopped. Greedy text is an unbroken run's, structured output included (up to a near-tie that the
   * re-prefilled batch resolves differently in floating point). Each failure gets its own wait.
   */
  async * generate (req: InferenceRequest, { signal }: { signal: AbortSignal }): AsyncGenerator<GenerationEvent> {
    const { agreement } = this.init
    const planned = agreement !== undefined && req.model === agreement.modelId
    if (!planned && this.meshPlan(req.model) === undefined) { yield * this.init.local.generate(req, { signal }); return }
    let deadline = performance.now() + (this.init.readyWaitMs ?? READY_WAIT_MS)
    /** every token streamed to the client so far (one event per token, generation-loop.ts) */
    const generated: number[] = [...(req.resumeTokens ?? [])]
    let failingOver = false
    /** attempts since events last flowed (sets the backoff) */
    let tries = 0
    for (let attempt = 1; ; attempt++) {
      const attemptReq = generated.length > 0 ? { ...req, resumeTokens: [...generated] } : req
      try {
        for await (const event of this.route(attemptReq, planned, signal)) {
          tries = 0
          if (failingOver) {
            // the next plan took over: a later failure is a new failover with its own wait
            failingOver = false
            this.metrics.failoversCompleted++
          }
          if (event.type === 'token') generated.push(event.tokenId)
          yield event
        }
        return
      } catch (err) {
        if (signal.aborted) throw err
        const started = generated.length > (req.resumeTokens?.length ?? 0)
        const retry = started ? isMeshFailure(err) : isPlanRace(err) || isLinkFailure(err) || (failingOver && isMeshFailure(err))
        if (started && retry && !failingOver) {
          // the first failure mid-generation: from now on wait for the next plan, however long detection takes
          failingOver = true
          this.metrics.failovers++
          deadline = performance.now() + (this.init.failoverWaitMs ?? FAILOVER_WAIT_MS)
          log.warn({ request: req.id, tokens: generated.length, err }, 'the pipeline broke mid-generation; resuming on the next plan')
        }
        if (!retry || performance.now() > deadline) {
          throw isLinkFailure(err) ? new PipelineUnavailableError(`the mesh failed under the request (${(err as Error).message}) and no plan took it over`, { cause: err }) : err
        }
        log.info({ request: req.id, attempt, code: (err as ExoError).code, tokens: generated.length }, 'retrying on the serving plan')
        tries++
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * tries)))
      }
    }
  }

  /** A ready plan of another model, learned from the announcements (this node does not plan it). */
  private meshPlan (model: string): Plan | undefined {
    return readyPlansInView(this.init.view(), model)[0]
  }

  private async * route (req: InferenceRequest, planned: boolean, signal: AbortSignal): AsyncGenerator<GenerationEvent> {
    let plan: Plan | undefined
    if (planned) {
      const serving = await this.init.agreement!.waitForServing(signal, this.init.readyWaitMs ?? READY_WAIT_MS)
      throwIfAborted(signal)
      plan = serving.plan
      if (plan === undefined) {
        if (serving.noPlan) throw new NoPlanError(`no plan for ${req.model}: ${serving.reason ?? 'unknown reason'}`)
        throw new PlanNotReadyError(serving.reason ?? `plan for ${req.model} is not ready`)
      }
    } else {
      plan = this.meshPlan(req.model)
      if (plan === undefined) throw new PlanNotReadyError(`no ready plan for ${req.model} in the mesh`)
    }
    const first = plan.stages[0]!.peerId
    if (first === this.init.selfId) { yield * this.generateAsFirstStage(req, { signal }); return }
    this.metrics.requestsForwarded++
    log.debug({ request: req.id, firstStage: plan.stages[0]!.name, plan: plan.id.slice(0, 12) }, 'forwarding to the first stage')
    const stream = await this.init.openInferenceStream(first, signal)
    yield * requestInference(stream, req, { signal })
  }

  /**
   * Drives `req` as the first stage of a ready plan held by this node (also the port of the inference
   * protocol's handler). Not the first stage of any ready plan → `NotFirstStageError`.
   */
  async * generateAsFirstStage (req: InferenceRequest, { signal }: { signal: AbortSignal }): AsyncGenerator<GenerationEvent> {
    const { agreement } = this.init
    if (agreement === undefined) throw new NotFirstStageError(`this node serves no model in the mesh (asked for ${req.model})`)
    if (req.model !== agreement.modelId) throw new UnknownModelError(req.model, [agreement.modelId])
    const lease = agreement.leaseFirstStage()
    if (lease === undefined) {
      const { plan, reason } = agreement.serving()
      if (plan === undefined) throw new PlanNotReadyError(reason ?? `no ready plan for ${req.model}`)
      throw new NotFirstStageError(`this node is not the first stage of plan ${plan.id.slice(0, 12)} (${plan.stages[0]!.name} is)`)
    }
    try {
      this.metrics.requestsAsFirstStage++
      const tokenizer = await this.loadTokenizer(signal)
      const { plan, handle } = lease
      const stage1 = plan.stages[1]?.peerId
      const m = this.metrics
      if (plan.stages.length > 1) {
        m.lastRing = { otherStagesMs: plan.stages.slice(1).reduce((a, s) => a + s.computeMs, 0), hops: plan.stages.length }
      }
      yield * generateAsFirstStage({
        request: req,
        plan,
        shard: handle.shard!,
        modelPath: agreement.model.path,
        tokenizer,
        ...(this.init.contextSize !== undefined ? { contextSize: this.init.contextSize } : {}),
        ...(handle.returnHops !== undefined ? { returnHops: handle.returnHops } : {}),
        ...(handle.prefix !== undefined ? { prefix: handle.prefix } : {}),
        ...(this.init.admission !== undefined ? { admit: async (cells: number, s: AbortSignal) => await this.init.admission!.acquire(s, agreement.stages.kvBytesOf(handle, cells)) } : {}),
        ...(stage1 !== undefined ? { dialStage1: async (open: OpenFrame, s: AbortSignal) => await this.init.dialNext(stage1, open, s) } : {}),
        timings: { onComputeMs: m.onFirstCompute, onRingMs: m.onRing, onToken: m.onToken },
        signal
      })
    } finally {
      lease.release()
    }
  }

  async countTokens (req: Pick<InferenceRequest, 'model' | 'prompt'>, options: { signal: AbortSignal }): Promise<number> {
    return await this.init.local.countTokens(req, options)
  }

  /** This node's models, plus the models other members hold (heldBy = every member announcing it). */
  async listModels (options: { signal: AbortSignal }): Promise<ModelInfo[]> {
    const local = await this.init.local.listModels(options)
    throwIfAborted(options.signal)
    const byId = new Map<string, ModelInfo>(local.map((m) => [m.id, { ...m, heldBy: [] }]))
    // this node's own entry is left out: its disk (`local`) is newer than its last announcement, so a model
    // deleted or pulled a moment ago is listed as it is now, not as it was announced
    const members = [...this.init.view().members.values()].map((e) => e.announcement).filter((a) => a.peerId !== this.init.selfId)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const a of members) {
      for (const m of a.models) {
        let info = byId.get(m.id)
        if (info === undefined) {
          info = { id: asModelId(m.id), sizeBytes: m.sizeBytes, architecture: 'unknown', nLayers: 0, contextLength: 0, hasChatTemplate: false, heldBy: [] }
          byId.set(m.id, info)
        }
        if (!info.heldBy.includes(a.name)) info.heldBy.push(a.name)
      }
    }
    for (const m of local) { const info = byId.get(m.id)!; for (const n of m.heldBy) if (!info.heldBy.includes(n)) info.heldBy.push(n) }
    return [...byId.values()]
  }

  private async loadTokenizer (signal: AbortSignal): Promise<Tokenizer> {
    if (this.tokenizer === undefined) {
      this.tokenizer = Tokenizer.load(this.init.agreement!.model.path, { signal })
      this.tokenizer.catch(() => { this.tokenizer = undefined })
    }
    return await this.tokenizer
  }

  async dispose (): Promise<void> {
    const t = this.tokenizer
    this.tokenizer = undefined
    await t?.then(async (x) => { await x.dispose() }, () => {})
  }
}
