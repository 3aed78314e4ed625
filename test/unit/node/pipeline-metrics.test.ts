import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Registry } from 'prom-client'
import { PipelineMetrics, registerPipelineMetrics } from '../../../src/node/pipeline/pipeline-metrics.js'
import { CountingInferenceService, registerInferenceMetrics } from '../../../src/node/counting-inference-service.js'
import { createNodeRegistry } from '../../../src/node/metrics/prom.js'
import { ActivationErrorCode } from '../../../src/shared/errors/protocol-errors.js'
import type { GenerationEvent, InferenceService } from '../../../src/shared/inference.js'

const gauges = { activeSessions: 0, loadedShards: 1, planId: undefined, planReady: false }

test('decode passes are counted apart from prefill passes, by role, as seconds histograms', async () => {
  const m = new PipelineMetrics()
  m.onFirstCompute(50, 12) // prefill
  m.onFirstCompute(10, 1)
  m.onFirstCompute(14, 1)
  m.onStageCompute(7, 1)
  assert.equal(m.decodeMs('first'), 12)
  assert.equal(m.decodeMs('stage'), 7)
  assert.equal(m.compute.first.count, 3)
  assert.equal(m.compute.first.sumMs, 74)
  const registry = new Registry()
  registerPipelineMetrics(registry, m, () => gauges)
  const text = await registry.metrics()
  assert.match(text, /^# TYPE exo_p2p_stage_decode_seconds histogram$/m)
  assert.match(text, /^exo_p2p_stage_decode_seconds_sum\{role="first"\} 0.024$/m)
  assert.match(text, /^exo_p2p_stage_decode_seconds_count\{role="first"\} 2$/m)
  assert.match(text, /^exo_p2p_stage_decode_seconds_count\{role="stage"\} 1$/m)
  assert.match(text, /^exo_p2p_stage_compute_seconds_count\{role="first"\} 3$/m)
  assert.match(text, /^exo_p2p_stage_compute_seconds_bucket\{le="0.01",role="first"\} 1$/m) // 10 ms
  assert.match(text, /^exo_p2p_stage_compute_seconds_bucket\{le="0.025",role="first"\} 2$/m) // + 14 ms
  assert.match(text, /^exo_p2p_stage_compute_seconds_bucket\{le="\+Inf",role="first"\} 3$/m)
  assert.doesNotMatch(text, /_mean\b/, 'no mean gauges: Prometheus derives means from _sum / _count')
})

test('ring time and the per-hop estimate are histograms; no decode pass yet: the mean is 0, not NaN', async () => {
  const m = new PipelineMetrics()
  m.onStageCompute(30, 4)
  assert.equal(m.decodeMs('stage'), 0)
  assert.equal(m.decodeMs('first'), 0)
  m.lastRing = { otherStagesMs: 4, hops: 2 }
  m.onRing(6) // (6 - 4) / 2 = 1 ms per hop
  m.onRing(3) // less than the prediction: 0, never negative
  const registry = new Registry()
  registerPipelineMetrics(registry, m, () => gauges)
  const text = await registry.metrics()
  assert.match(text, /^exo_p2p_pipeline_ring_seconds_count 2$/m)
  const value = (re: RegExp): number => Number(re.exec(text)?.[1])
  assert.ok(Math.abs(value(/^exo_p2p_pipeline_ring_seconds_sum (\S+)$/m) - 0.009) < 1e-12)
  assert.ok(Math.abs(value(/^exo_p2p_pipeline_hop_seconds_sum (\S+)$/m) - 0.001) < 1e-12)
  assert.match(text, /^exo_p2p_pipeline_hop_seconds_bucket\{le="0.0001"\} 1$/m)
  assert.match(text, /^exo_p2p_pipeline_loaded_shards 1$/m)
})

test('API-node histograms: time to first token, inter-token latency, request duration; llama-server names; process metrics', async () => {
  const inner: InferenceService = {
    async * generate (): AsyncGenerator<GenerationEvent> {
      await new Promise((resolve) => setTimeout(resolve, 30))
      yield { type: 'token', text: 'a' } as GenerationEvent
      await new Promise((resolve) => setTimeout(resolve, 20))
      yield { type: 'token', text: 'b' } as GenerationEvent
      yield { type: 'done', finishReason: 'stop', usage: { promptTokens: 5, completionTokens: 2 } } as GenerationEvent
    },
    async countTokens () { return 0 },
    async listModels () { return [] }
  }
  const service = new CountingInferenceService(inner)
  for await (const _ of service.generate({} as never, { signal: new AbortController().signal })) { /* drain */ }
  const registry = createNodeRegistry()
  registerInferenceMetrics(registry, service)
  const text = await registry.metrics()
  const value = (re: RegExp): number => Number(re.exec(text)?.[1])
  assert.equal(value(/^exo_p2p_time_to_first_token_seconds_count (\S+)$/m), 1)
  assert.ok(value(/^exo_p2p_time_to_first_token_seconds_sum (\S+)$/m) >= 0.025)
  assert.equal(value(/^exo_p2p_inter_token_latency_seconds_count (\S+)$/m), 1)
  assert.ok(value(/^exo_p2p_inter_token_latency_seconds_sum (\S+)$/m) >= 0.015)
  assert.equal(value(/^exo_p2p_request_duration_seconds_count\{finish_reason="stop"\} (\S+)$/m), 1)
  assert.equal(value(/^exo_p2p_prompt_tokens_total (\S+)$/m), 5)
  assert.equal(value(/^exo_p2p_tokens_predicted_total (\S+)$/m), 2)
  assert.equal(value(/^exo_p2p_requests_processing (\S+)$/m), 0)
  assert.equal(value(/^exo_p2p_requests_total\{finish_reason="stop"\} (\S+)$/m), 1)
  assert.ok(value(/^process_resident_memory_bytes (\S+)$/m) > 0)
  assert.match(text, /^# TYPE nodejs_eventloop_lag_seconds gauge$/m)
})

test('activation refusals are a counter by reason; plan_mismatch, not_ready and stage_mismatch show from the start', async () => {
  const m = new PipelineMetrics()
  const registry = new Registry()
  registerPipelineMetrics(registry, m, () => gauges)
  const before = await registry.metrics()
  assert.match(before, /^# TYPE exo_p2p_activation_refusals_total counter$/m)
  for (const r of ['plan_mismatch', 'not_ready', 'stage_mismatch']) assert.match(before, new RegExp(`^exo_p2p_activation_refusals_total\\{reason="${r}"\\} 0$`, 'm'))
  m.onRefusal(ActivationErrorCode.PlanMismatch)
  m.onRefusal(ActivationErrorCode.PlanMismatch)
  m.onRefusal(ActivationErrorCode.Busy)
  const text = await registry.metrics()
  assert.match(text, /^exo_p2p_activation_refusals_total\{reason="plan_mismatch"\} 2$/m)
  assert.match(text, /^exo_p2p_activation_refusals_total\{reason="busy"\} 1$/m)
  assert.match(text, /^exo_p2p_activation_refusals_total\{reason="not_ready"\} 0$/m)
})
