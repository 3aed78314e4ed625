import type { Histogram, Registry } from 'prom-client'
import { ActivationErrorCode, activationErrorName } from '../../shared/errors/protocol-errors.js'
import { BUCKETS, counterOf, gaugeOf, histogram } from '../metrics/prom.js'

/** Counters of the pipeline on one node, for /metrics and the plan's measured ms/token. Times are ms. */
export class PipelineMetrics {
  /** the /metrics histograms (seconds), registered by the node: see registerPipelineMetrics */
  readonly histograms = {
    compute: histogram('exo_p2p_stage_compute_seconds', 'Forward passes of this node\'s layers (prefill chunks and decode), by role: first = stage 0 driving a request, stage = stages >= 1.', ['role'], BUCKETS.pass) as Histogram<'role'>,
    decode: histogram('exo_p2p_stage_decode_seconds', 'One-token (decode) forward passes of this node\'s layers, by role.', ['role'], BUCKETS.pass) as Histogram<'role'>,
    ring: histogram('exo_p2p_pipeline_ring_seconds', 'First stage: from sending a token\'s hidden state to its sampled token coming back.', [], BUCKETS.pass),
    hop: histogram('exo_p2p_pipeline_hop_seconds', 'Estimated time of one activation hop, per token: (ring time - the other stages\' predicted compute) / hops.', [], BUCKETS.hop)
  }

  /** forward passes of this node's layers, by role: `first` (stage 0 driving a request) or `stage` (stages ≥ 1) */
  readonly compute = { first: { sumMs: 0, count: 0 }, stage: { sumMs: 0, count: 0 } }
  /** the same, counting only decode passes (one token): the per-token cost of this node's layers */
  readonly decodeCompute = { first: { sumMs: 0, count: 0 }, stage: { sumMs: 0, count: 0 } }
  /** stage 0: DECODE/last PREFILL sent → RESULT back (hops + the other stages' compute) */
  readonly ring = { sumMs: 0, count: 0 }
  /** tokens this node produced as a plan's first stage */
  tokensServed = 0
  /** requests this node drove as first stage, and forwarded to another node's first stage */
  requestsAsFirstStage = 0
  requestsForwarded = 0
  /** pipelines that broke under a request routed by this node mid-generation, and those the next plan resumed */
  failovers = 0
  failoversCompleted = 0
  /** predicted compute ms of the stages after stage 0 and the ring's hop count, of the last multi-stage plan driven */
  lastRing: { otherStagesMs: number, hops: number } | undefined

  onFirstCompute = (ms: number, tokens: number): void => { this.record('first', ms, tokens) }
  onStageCompute = (ms: number, tokens: number): void => { this.record('stage', ms, tokens) }

  private record (role: 'first' | 'stage', ms: number, tokens: number): void {
    this.compute[role].sumMs += ms
    this.compute[role].count++
    this.histograms.compute.observe({ role }, ms / 1000)
    if (tokens === 1) {
      this.decodeCompute[role].sumMs += ms
      this.decodeCompute[role].count++
      this.histograms.decode.observe({ role }, ms / 1000)
    }
  }

  /** mean ms of one decode pass of this node's layers in `role` (0 before the first) */
  decodeMs (role: 'first' | 'stage'): number {
    const c = this.decodeCompute[role]
    return c.count > 0 ? c.sumMs / c.count : 0
  }
  onRing = (ms: number): void => {
    this.ring.sumMs += ms
    this.ring.count++
    this.histograms.ring.observe(ms / 1000)
    const r = this.lastRing
    if (r !== undefined && r.hops > 0) this.histograms.hop.observe(Math.max(0, ms - r.otherStagesMs) / r.hops / 1000)
  }
  onToken = (): void => { this.tokensServed++ }

  /** activation streams this node refused as the deciding stage, by wire code name (lowercase) */
  readonly refusals = new Map<string, number>(REFUSALS_SHOWN.map((c) => [activationErrorName(c).toLowerCase(), 0]))
  onRefusal = (code: ActivationErrorCode): void => {
    const reason = activationErrorName(code).toLowerCase()
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1)
  }
}

/** refusal reasons exported from the start (0), so a scrape sees the series before the first refusal */
const REFUSALS_SHOWN = [ActivationErrorCode.PlanMismatch, ActivationErrorCode.NotReady, ActivationErrorCode.StageMismatch]

export interface PipelineGauges {
  /** KV-cache sessions this node holds for pipeline requests (all plans, all stages) */
  activeSessions: number
  /** loaded layer ranges */
  loadedShards: number
  planId: string | undefined
  planReady: boolean
}

/**
 * The pipeline's metrics. Histograms in seconds: `exo_p2p_stage_compute_seconds{role}` (every forward pass
 * of this node's layers), `exo_p2p_stage_decode_seconds{role}` (one-token passes only),
 * `exo_p2p_pipeline_ring_seconds` (first stage: hidden state out → token back) and
 * `exo_p2p_pipeline_hop_seconds` (per token: ring time minus the other stages' predicted compute, over the
 * hop count — an estimate: the stages' clocks are not compared).
 */
export function registerPipelineMetrics (registry: Registry, m: PipelineMetrics, gauges: () => PipelineGauges): void {
  for (const h of Object.values(m.histograms)) registry.registerMetric(h)
  counterOf(registry, 'exo_p2p_pipeline_tokens_served_total', 'Tokens this node generated as a plan\'s first stage.', [], () => [[{}, m.tokensServed]])
  counterOf(registry, 'exo_p2p_pipeline_requests_total', 'Pipeline requests, by how this node handled them.', ['as'],
    () => [[{ as: 'first_stage' }, m.requestsAsFirstStage], [{ as: 'forwarded' }, m.requestsForwarded]])
  counterOf(registry, 'exo_p2p_pipeline_failovers_total', 'Requests routed by this node whose pipeline broke mid-generation, by outcome: started = waited for the next plan, resumed = the next plan streamed on.', ['outcome'],
    () => [[{ outcome: 'started' }, m.failovers], [{ outcome: 'resumed' }, m.failoversCompleted]])
  counterOf(registry, 'exo_p2p_activation_refusals_total', 'Activation streams this node refused as the deciding stage (protocols/activations.md ERROR), by code: plan_mismatch = OPEN or a frame of a plan this node does not serve, not_ready, stage_mismatch, busy, malformed, …',
    ['reason'], () => [...m.refusals].map(([reason, n]) => [{ reason }, n]))
  gaugeOf(registry, 'exo_p2p_pipeline_active_sessions', 'KV-cache sessions held for pipeline requests on this node.', [], () => [[{}, gauges().activeSessions]])
  gaugeOf(registry, 'exo_p2p_pipeline_loaded_shards', 'Layer ranges loaded on this node.', [], () => [[{}, gauges().loadedShards]])
  gaugeOf(registry, 'exo_p2p_plan_ready', 'Whether a plan is ready to serve (label: its id).', ['plan_id'], () => {
    const g = gauges()
    return [[{ plan_id: g.planId ?? '' }, g.planReady ? 1 : 0]]
  })
}
