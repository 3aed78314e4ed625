import assert from 'node:assert/strict'
import { test } from 'node:test'
import { plan } from '../../../src/planner/index.js'
import { PlannerInputError } from '../../../src/shared/errors/planner-errors.js'
import { MB, member, model, stageBytes, view } from './helpers.js'

// 6 layers of 10 MB; KV 1 MB per 1024 tokens; five sliding-window layers hold 1/8 of the context
const CTX = 64 * 1024
const KV_FULL = 1024 * CTX
const KV_SWA = KV_FULL / 8
const swaModel = model(6, { kvBytesPerTokenPerLayer: 1024, contextSize: CTX, kvBytesPerLayer: [KV_SWA, KV_SWA, KV_SWA, KV_SWA, KV_SWA, KV_FULL] })

test('per-layer KV bytes: a node that fits the model only with bounded sliding-window caches gets all of it', () => {
  const need = stageBytes(swaModel, 0, 6)
  assert.equal(need, 60 * MB + 8 * MB + 5 * KV_SWA + KV_FULL)
  const budgetMb = Math.ceil(need / MB)
  // under the uniform model (6 × 64 MB of KV) the same budget is far too small
  assert.ok(stageBytes({ ...swaModel, kvBytesPerLayer: undefined }, 0, 6) > budgetMb * MB)
  const p = plan(view([member('a', budgetMb, 1)]), swaModel)
  assert.equal(p.kind, 'plan')
  if (p.kind === 'plan') assert.equal(p.stages[0]!.memoryBytes, need)
  assert.equal(plan(view([member('a', budgetMb, 1)]), { ...swaModel, kvBytesPerLayer: undefined }).kind, 'none')
})

test('per-layer KV bytes: the split puts the costly full-attention layer where it fits, deterministically', () => {
  const members = [member('a', 60, 1), member('b', 200, 1)]
  const p1 = plan(view(members), swaModel)
  const p2 = plan(view([...members].reverse()), swaModel)
  assert.equal(p1.kind, 'plan')
  assert.deepEqual(p1, p2)
  if (p1.kind !== 'plan') return
  for (const s of p1.stages) assert.equal(s.memoryBytes, stageBytes(swaModel, s.start, s.end))
  // the plan id covers the per-layer bytes: the uniform card plans under another id
  const uniform = plan(view(members), { ...swaModel, kvBytesPerLayer: Array(6).fill(KV_FULL) })
  assert.ok(uniform.kind !== 'plan' || uniform.id !== p1.id)
})

test('per-layer KV bytes of the wrong length or negative are refused', () => {
  assert.throws(() => plan(view([member('a', 1000, 1)]), { ...swaModel, kvBytesPerLayer: [1, 2] }), PlannerInputError)
  assert.throws(() => plan(view([member('a', 1000, 1)]), { ...swaModel, kvBytesPerLayer: [-1, 0, 0, 0, 0, 0] }), PlannerInputError)
})
