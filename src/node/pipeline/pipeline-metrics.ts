/** Counters of the pipeline on one node, for /metrics. Times are ms. */
export class PipelineMetrics {
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
    if (tokens === 1) { this.decodeCompute[role].sumMs += ms; this.decodeCompute[role].count++ }
  }

  /** mean ms of one decode pass of this node's layers in `role` (0 before the first) */
  decodeMs (role: 'first' | 'stage'): number {
    const c = this.decodeCompute[role]
    return c.count > 0 ? c.sumMs / c.count : 0
  }
  onRing = (ms: number): void => { this.ring.sumMs += ms; this.ring.count++ }
  onToken = (): void => { this.tokensServed++ }

  /** Mean ms per hop: ring time minus the other stages' predicted compute, over the hop count. */
  hopMsEstimate (): number {
    if (this.ring.count === 0 || this.lastRing === undefined || this.lastRing.hops === 0) return 0
    return Math.max(0, (this.ring.sumMs / this.ring.count - this.lastRing.otherStagesMs) / this.lastRing.hops)
  }
}

export interface PipelineGauges {
  /** KV-cache sessions this node holds for pipeline requests (all plans, all stages) */
  activeSessions: number
  /** loaded layer ranges */
  loadedShards: number
  planId: string | undefined
  planReady: boolean
}

/** Prometheus text of the pipeline metrics (appended to the node's /metrics). Pure. */
export function pipelineMetricsText (m: PipelineMetrics, g: PipelineGauges): string {
  const lines: string[] = []
  const metric = (name: string, type: string, help: string, samples: Array<[string, number]>): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${Number.isFinite(v) ? v : 0}`)
  }
  metric('exo_p2p_stage_compute_ms_sum', 'counter', 'Time in this node\'s layers (ms), by role.',
    [['{role="first"}', m.compute.first.sumMs], ['{role="stage"}', m.compute.stage.sumMs]])
  metric('exo_p2p_stage_compute_count', 'counter', 'Forward passes of this node\'s layers, by role.',
    [['{role="first"}', m.compute.first.count], ['{role="stage"}', m.compute.stage.count]])
  metric('exo_p2p_stage_compute_ms_mean', 'gauge', 'Mean ms per forward pass of this node\'s layers, by role.',
    [['{role="first"}', m.compute.first.count > 0 ? m.compute.first.sumMs / m.compute.first.count : 0], ['{role="stage"}', m.compute.stage.count > 0 ? m.compute.stage.sumMs / m.compute.stage.count : 0]])
  metric('exo_p2p_stage_decode_ms_sum', 'counter', 'Time in this node\'s layers for one-token (decode) passes (ms), by role.',
    [['{role="first"}', m.decodeCompute.first.sumMs], ['{role="stage"}', m.decodeCompute.stage.sumMs]])
  metric('exo_p2p_stage_decode_count', 'counter', 'One-token (decode) passes of this node\'s layers, by role.',
    [['{role="first"}', m.decodeCompute.first.count], ['{role="stage"}', m.decodeCompute.stage.count]])
  metric('exo_p2p_pipeline_ring_ms_sum', 'counter', 'First stage: ms from sending a token\'s hidden state to its sampled token coming back.', [['', m.ring.sumMs]])
  metric('exo_p2p_pipeline_ring_count', 'counter', 'First stage: tokens that went around the ring.', [['', m.ring.count]])
  metric('exo_p2p_pipeline_hop_ms', 'gauge', 'Estimated ms per hop: (mean ring time - the other stages\' predicted compute) / hops.', [['', m.hopMsEstimate()]])
  metric('exo_p2p_pipeline_tokens_served_total', 'counter', 'Tokens this node generated as a plan\'s first stage.', [['', m.tokensServed]])
  metric('exo_p2p_pipeline_requests_total', 'counter', 'Pipeline requests, by how this node handled them.',
    [['{as="first_stage"}', m.requestsAsFirstStage], ['{as="forwarded"}', m.requestsForwarded]])
  metric('exo_p2p_pipeline_failovers_total', 'counter', 'Requests routed by this node whose pipeline broke mid-generation, by outcome: started = waited for the next plan, resumed = the next plan streamed on.',
    [['{outcome="started"}', m.failovers], ['{outcome="resumed"}', m.failoversCompleted]])
  metric('exo_p2p_pipeline_active_sessions', 'gauge', 'KV-cache sessions held for pipeline requests on this node.', [['', g.activeSessions]])
  metric('exo_p2p_pipeline_loaded_shards', 'gauge', 'Layer ranges loaded on this node.', [['', g.loadedShards]])
  metric('exo_p2p_plan_ready', 'gauge', 'Whether a plan is ready to serve (label: its id).', [[`{plan_id="${g.planId ?? ''}"}`, g.planReady ? 1 : 0]])
  return lines.join('\n') + '\n'
}
