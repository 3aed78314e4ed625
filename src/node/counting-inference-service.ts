import type { Histogram, Registry } from 'prom-client'
import { BUCKETS, counterOf, gaugeOf, histogram } from './metrics/prom.js'
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

/** Latency histograms of the requests this node served as API node (seconds). */
export interface InferenceHistograms {
  /** request received → first token */
  ttft: Histogram
  /** gap between consecutive tokens of one request */
  interToken: Histogram
  /** request received → end, by finish reason */
  duration: Histogram<'finish_reason'>
}

/**
 * Decorates an InferenceService with counters and latency histograms. A generation whose consumer stops
 * early (client disconnect → abort) is counted as `cancelled` even when the inner service ends without a `done`.
 */
export class CountingInferenceService implements InferenceService {
  readonly stats: InferenceStats = {
    finished: { stop: 0, length: 0, tool_calls: 0, cancelled: 0, error: 0 },
    inFlight: 0,
    tokensServed: 0,
    promptTokens: 0
  }

  readonly histograms: InferenceHistograms = {
    ttft: histogram('exo_p2p_time_to_first_token_seconds', 'Time from a generation request to its first token (prefill and routing included), on the API node.', [], BUCKETS.ttft),
    interToken: histogram('exo_p2p_inter_token_latency_seconds', 'Time between consecutive tokens of one generation, on the API node.', [], BUCKETS.pass),
    duration: histogram('exo_p2p_request_duration_seconds', 'Time from a generation request to its end, by finish reason.', ['finish_reason'], BUCKETS.request) as Histogram<'finish_reason'>
  }

  constructor (private readonly inner: InferenceService) {}

  async * generate (req: InferenceRequest, options: { signal: AbortSignal }): AsyncGenerator<GenerationEvent> {
    this.stats.inFlight++
    const t0 = performance.now()
    let last: number | undefined
    let reason: FinishReason | undefined
    try {
      for await (const event of this.inner.generate(req, options)) {
        if (event.type === 'token') {
          const now = performance.now()
          if (last === undefined) this.histograms.ttft.observe((now - t0) / 1000)
          else this.histograms.interToken.observe((now - last) / 1000)
          last = now
        } else if (event.type === 'done') {
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
      const r = reason ?? (options.signal.aborted ? 'cancelled' : 'error')
      this.stats.finished[r]++
      this.histograms.duration.observe({ finish_reason: r }, (performance.now() - t0) / 1000)
    }
  }

  async countTokens (req: Pick<InferenceRequest, 'model' | 'prompt'>, options: { signal: AbortSignal }): Promise<number> {
    return await this.inner.countTokens(req, options)
  }

  async listModels (options: { signal: AbortSignal }): Promise<ModelInfo[]> {
    return await this.inner.listModels(options)
  }
}

/**
 * The inference metrics, named after llama-server's where the quantity is the same
 * (`llamacpp:prompt_tokens_total` → `exo_p2p_prompt_tokens_total`, `llamacpp:tokens_predicted_total`,
 * `llamacpp:requests_processing`).
 */
export function registerInferenceMetrics (registry: Registry, service: CountingInferenceService): void {
  const { stats } = service
  counterOf(registry, 'exo_p2p_requests_total', 'Generation requests that ended on this node (as API node), by finish reason.', ['finish_reason'],
    () => Object.entries(stats.finished).map(([r, n]) => [{ finish_reason: r }, n]))
  counterOf(registry, 'exo_p2p_requests_cancelled_total', 'Generation requests cancelled (client disconnect or stop).', [], () => [[{}, stats.finished.cancelled]])
  gaugeOf(registry, 'exo_p2p_requests_processing', 'Generation requests running now.', [], () => [[{}, stats.inFlight]])
  counterOf(registry, 'exo_p2p_tokens_predicted_total', 'Completion tokens generated for clients of this node.', [], () => [[{}, stats.tokensServed]])
  counterOf(registry, 'exo_p2p_prompt_tokens_total', 'Prompt tokens processed for clients of this node.', [], () => [[{}, stats.promptTokens]])
  for (const h of Object.values(service.histograms)) registry.registerMetric(h)
}
