import type { FinishReason, GenerationEvent, InferenceRequest, InferenceService, ModelInfo } from '../shared/inference.js'

/** Counters of the requests a node served, for GET /metrics. */
export interface InferenceStats {
  /** requests that ended, by finish reason ('error' = threw before or during generation) */
  finished: Record<FinishReason, number>
  /** requests generating right now */
  inFlight: number
  /** completion tokens produced (usage.completionTokens of finished requests) */
  tokensServed: number
  /** prompt tokens processed */
  promptTokens: number
}

/**
 * Decorates an InferenceService with counters. A generation whose consumer stops early (client
 * disconnect → abort) is counted as `cancelled` even when the inner service ends without a `done`.
 */
export class CountingInferenceService implements InferenceService {
  readonly stats: InferenceStats = {
    finished: { stop: 0, length: 0, tool_calls: 0, cancelled: 0, error: 0 },
    inFlight: 0,
    tokensServed: 0,
    promptTokens: 0
  }

  constructor (private readonly inner: InferenceService) {}

  async * generate (req: InferenceRequest, options: { signal: AbortSignal }): AsyncGenerator<GenerationEvent> {
    this.stats.inFlight++
    let reason: FinishReason | undefined
    try {
      for await (const event of this.inner.generate(req, options)) {
        if (event.type === 'done') {
          reason = event.finishReason
          this.stats.tokensServed += event.usage.completionTokens
          this.stats.promptTokens += event.usage.promptTokens
        }
        yield event
      }
    } catch (err) {
      reason = options.signal.aborted ? 'cancelled' : 'error'
      throw err
    } finally {
      this.stats.inFlight--
      this.stats.finished[reason ?? (options.signal.aborted ? 'cancelled' : 'error')]++
    }
  }

  async countTokens (req: Pick<InferenceRequest, 'model' | 'prompt'>, options: { signal: AbortSignal }): Promise<number> {
    return await this.inner.countTokens(req, options)
  }

  async listModels (options: { signal: AbortSignal }): Promise<ModelInfo[]> {
    return await this.inner.listModels(options)
  }
}

/** Prometheus text of the inference counters. Pure. */
export function inferenceMetricsText (stats: InferenceStats): string {
  const lines = [
    '# HELP exo_p2p_requests_total Generation requests that ended on this node (as API node), by finish reason.',
    '# TYPE exo_p2p_requests_total counter',
    ...Object.entries(stats.finished).map(([reason, n]) => `exo_p2p_requests_total{finish_reason="${reason}"} ${n}`),
    '# HELP exo_p2p_requests_cancelled_total Generation requests cancelled (client disconnect or stop).',
    '# TYPE exo_p2p_requests_cancelled_total counter',
    `exo_p2p_requests_cancelled_total ${stats.finished.cancelled}`,
    '# HELP exo_p2p_requests_in_flight Generation requests running now.',
    '# TYPE exo_p2p_requests_in_flight gauge',
    `exo_p2p_requests_in_flight ${stats.inFlight}`,
    '# HELP exo_p2p_tokens_served_total Completion tokens generated for clients of this node.',
    '# TYPE exo_p2p_tokens_served_total counter',
    `exo_p2p_tokens_served_total ${stats.tokensServed}`,
    '# HELP exo_p2p_prompt_tokens_total Prompt tokens processed for clients of this node.',
    '# TYPE exo_p2p_prompt_tokens_total counter',
    `exo_p2p_prompt_tokens_total ${stats.promptTokens}`
  ]
  return lines.join('\n') + '\n'
}
