import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { plan } from '../../../src/planner/index.js'
import type { Plan } from '../../../src/planner/index.js'
import { MB, member, model, view } from './helpers.js'

/** Members that lack the file (fetchBytesPerSec) are candidates like holders; the plan shows what they fetch. */
describe('planner: members that fetch their layers from peers', () => {
  const m = model(6)
  // 35 MB each: two layers with embeddings or output, or three middle layers — a 3-way split is forced
  const holder = member('a', 35, 1)
  const fetchers = [{ ...member('b', 35, 1), fetchBytesPerSec: 50e6 }, { ...member('c', 35, 1), fetchBytesPerSec: 0 }]

  it('uses them in the plan; their stages carry the weight bytes to fetch and the predicted load time', () => {
    const p = plan(view([holder, ...fetchers]), m) as Plan
    assert.equal(p.kind, 'plan')
    assert.equal(p.stages.length, 3)
    for (const s of p.stages) {
      const layers = (s.end - s.start) * 10 * MB + (s.start === 0 ? 4 * MB : 0) + (s.end === 6 ? 4 * MB : 0)
      if (s.peerId === 'a') { assert.equal(s.fetchBytes, undefined); assert.equal(s.loadMs, undefined); continue }
      assert.equal(s.fetchBytes, layers, `stage of ${s.peerId}`)
      // 50e6 B/s quantised down to a power of two (2^25 = 33.5 MB/s); unmeasured → no prediction
      if (s.peerId === 'b') assert.equal(s.loadMs, Math.round(layers / 2 ** 25 * 1000))
      else assert.equal(s.loadMs, undefined)
    }
  })

  it('bandwidth jitter inside one power of two gives the same plan id; a holder-only view is unchanged by the field', () => {
    const a = plan(view([holder, ...fetchers]), m) as Plan
    const b = plan(view([holder, { ...fetchers[0]!, fetchBytesPerSec: 60e6 }, fetchers[1]!]), m) as Plan
    assert.equal(a.id, b.id)
    const holders = [holder, member('b', 35, 1), member('c', 35, 1)]
    const withUndefined = holders.map((h) => ({ ...h, fetchBytesPerSec: undefined }))
    assert.equal((plan(view(holders), m) as Plan).id, (plan(view(withUndefined), m) as Plan).id)
    assert.notEqual((plan(view(holders), m) as Plan).id, a.id)
  })
})
