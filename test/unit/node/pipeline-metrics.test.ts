import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PipelineMetrics, pipelineMetricsText } from '../../../src/node/pipeline/pipeline-metrics.js'

test('decode passes are counted apart from prefill passes, by role', () => {
  const m = new PipelineMetrics()
  m.onFirstCompute(50, 12) // prefill
  m.onFirstCompute(10, 1)
  m.onFirstCompute(14, 1)
  m.onStageCompute(7, 1)
  assert.equal(m.decodeMs('first'), 12)
  assert.equal(m.decodeMs('stage'), 7)
  assert.equal(m.compute.first.count, 3)
  assert.equal(m.compute.first.sumMs, 74)
  const text = pipelineMetricsText(m, { activeSessions: 0, loadedShards: 1, planId: undefined, planReady: false })
  assert.match(text, /^exo_p2p_stage_decode_ms_sum\{role="first"\} 24$/m)
  assert.match(text, /^exo_p2p_stage_decode_count\{role="first"\} 2$/m)
  assert.match(text, /^exo_p2p_stage_decode_count\{role="stage"\} 1$/m)
  assert.match(text, /^exo_p2p_stage_compute_count\{role="first"\} 3$/m)
})

test('no decode pass yet: the mean is 0, not NaN', () => {
  const m = new PipelineMetrics()
  m.onStageCompute(30, 4)
  assert.equal(m.decodeMs('stage'), 0)
  assert.equal(m.decodeMs('first'), 0)
})
