import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatPlan, planCliJson } from '../../../src/cli/plan-view.js'
import { formatPeersTable, planLine } from '../../../src/cli/peers-table.js'
import type { ClusterStateJson, MemberJson } from '../../../src/shared/cluster-state.js'

const member = (peerId: string, name: string, shards: MemberJson['shards']): MemberJson => ({
  peerId, name, state: 'alive', addresses: [], httpUrl: '', capabilities: { memoryBudgetBytes: 0, freeMemoryBytes: 0, cpuCores: 2, backend: 'cpu', computeMsPerUnit: 0.1 },
  models: [{ id: 'm', sizeBytes: 1 }], shards, queueLength: 0, lastSeenMsAgo: 0
})

const base: ClusterStateJson = {
  self: { peerId: 'peer-b', name: 'b', httpUrl: '', addresses: [] },
  members: [
    member('peer-a', 'a', [{ model: 'm', start: 0, end: 2, ready: true, planId: 'old' }, { model: 'm', start: 0, end: 2, ready: true, planId: 'p1' }]),
    member('peer-b', 'b', [{ model: 'm', start: 2, end: 5, ready: false, planId: 'p1' }])
  ],
  links: [],
  viewHash: 'ab'.repeat(32),
  plan: {
    id: 'f'.repeat(64), model: 'm', ready: false, predictedMsPerToken: 3.25,
    stages: [{ peerId: 'peer-a', name: 'a', start: 0, end: 2, ready: true, predictedMs: 0.5, gpuLayers: 1, deviceBytes: 1e6 }, { peerId: 'peer-b', name: 'b', start: 2, end: 5, ready: false, predictedMs: 0.75 }]
  },
  planReason: 'waiting for b (layers 2–4)'
}

test('plan --json has id, stages and ready; no plan → id null with the reason', () => {
  const j = planCliJson(base)
  assert.equal(j.id, 'f'.repeat(64))
  assert.equal(j.ready, false)
  assert.deepEqual(j.stages.map((s) => [s.name, s.start, s.end, s.layers, s.ready]), [['a', 0, 2, 2, true], ['b', 2, 5, 3, false]])
  assert.equal(j.reason, 'waiting for b (layers 2–4)')
  const none = planCliJson({ ...base, plan: null, planReason: 'model m needs 9 MB, the 2 nodes offer 2 MB in total' })
  assert.deepEqual([none.id, none.ready, none.stages, none.reason], [null, false, [], 'model m needs 9 MB, the 2 nodes offer 2 MB in total'])
  assert.match(formatPlan({ ...base, plan: null, planReason: 'too big' }), /No shard plan .*too big/)
})

test('plan table marks loading stages and the asked node; peers lists each range once and the plan line', () => {
  const text = formatPlan(base)
  assert.match(text, /NOT READY · 2 stage\(s\) · predicted 3\.25 ms\/token/)
  assert.match(text, /1 +\*b .*\[2, 5\) 3 layers +0\.750 ms +loading/)
  assert.match(text, /0 +a .*\[0, 2\) 2 layers, 1 on GPU +0\.500 ms +yes/)
  assert.match(text, /ring: a → b → a/)
  const peers = formatPeersTable(base)
  assert.equal((peers.match(/m\[0,2\)/g) ?? []).length, 1, 'a range serving two plans is listed once')
  assert.match(peers, /m\[2,5\)…/)
  assert.equal(planLine(base), `plan ${'f'.repeat(12)} (m) not ready: a[0,2)(1 on GPU) → b[2,5)… · predicted 3.25 ms/token`)
  assert.equal(planLine({ ...base, plan: undefined }), undefined)
})
