import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { applyAnnouncement, applyLeave, applyMessage, applyUnreachable, emptyView, expire, livenessOf } from '../../../src/mesh/membership/view.js'
import type { ViewState } from '../../../src/mesh/membership/view.js'
import { canonicalView, viewHash } from '../../../src/mesh/membership/canonical-view.js'
import { REMOVE_AFTER_MS, SUSPECT_AFTER_MS, EXPIRE_CHECK_INTERVAL_MS, ANNOUNCE_INTERVAL_MS } from '../../../src/mesh/membership/constants.js'
import { nextRttClassMs, quantise125, rttClassMs } from '../../../src/mesh/membership/quantise.js'
import type { Announcement } from '../../../src/mesh/membership/announcement.js'
import { makeAnnouncement } from './fixtures.js'

const ids = ['12D3KooWd', '12D3KooWa', '12D3KooWc', '12D3KooWb']

function links (self: string, rtt: (to: string) => number): Announcement['links'] {
  return ids.filter((p) => p !== self).map((p) => ({ peerId: p, rttMs: rtt(p), rttClassMs: rttClassMs(rtt(p)), bandwidthBytesPerSec: 0 }))
}

describe('membership view state machine', () => {
  it('converges to the same hash whatever the order messages arrive in', () => {
    const anns = ids.map((id, i) => makeAnnouncement(id, { seq: 3, links: links(id, () => 0.5 + i / 10) }))
    const older = ids.map((id) => makeAnnouncement(id, { seq: 1, name: 'old-name' }))
    const hashes = new Set<string>()
    for (const [k, self] of ids.entries()) {
      // each node sees a different interleaving, including stale duplicates after the newest
      const order = [...older, ...anns].map((a, j) => ({ a, key: (j * (k + 3) * 7919) % 101 }))
        .sort((x, y) => x.key - y.key).map((x) => x.a)
      let s = emptyView(self)
      for (const [t, a] of order.entries()) s = applyAnnouncement(s, a, t).state
      for (const a of anns) s = applyAnnouncement(s, a, 100).state // the newest always wins eventually
      const view = canonicalView(s)
      assert.deepEqual(view.members.map((m) => m.peerId), [...ids].sort())
      assert.ok(view.members.every((m) => m.name !== 'old-name'))
      hashes.add(viewHash(view))
    }
    assert.equal(hashes.size, 1)
  })

  it('ignores stale announcements and reports outcomes', () => {
    let s = emptyView('self')
    assert.equal(applyAnnouncement(s, makeAnnouncement('x', { seq: 5 }), 0).outcome, 'joined')
    s = applyAnnouncement(s, makeAnnouncement('x', { seq: 5 }), 0).state
    assert.equal(applyAnnouncement(s, makeAnnouncement('x', { seq: 4 }), 1).outcome, 'stale')
    assert.equal(applyAnnouncement(s, makeAnnouncement('x', { seq: 5 }), 1).outcome, 'stale')
    assert.equal(applyAnnouncement(s, makeAnnouncement('x', { seq: 6 }), 1).outcome, 'updated')
    assert.equal(applyAnnouncement(s, makeAnnouncement('x', { epoch: 2000, seq: 0 }), 1).outcome, 'updated', 'a restart has a larger epoch')
  })

  it('a leave removes at once; older announcements of that epoch stay out, a restart comes back', () => {
    let s = applyAnnouncement(emptyView('self'), makeAnnouncement('x', { seq: 5 }), 0).state
    const r = applyLeave(s, { v: 1, kind: 'leave', peerId: 'x', epoch: 1000, seq: 6 }, 10)
    assert.equal(r.outcome, 'left')
    s = r.state
    assert.equal(s.members.has('x'), false)
    assert.equal(applyMessage(s, makeAnnouncement('x', { seq: 5 }), 20).outcome, 'stale')
    assert.equal(applyMessage(s, makeAnnouncement('x', { epoch: 3000, seq: 0 }), 20).outcome, 'joined')
    // tombstones are dropped after their time; the member set is untouched by that
    const later = expire(s, 10 + 10_001).state
    assert.equal(later.tombstones.size, 0)
  })

  it('an unreachable member (lost connection, failed redial) is removed at once; its next announcement restores it', () => {
    let s = applyAnnouncement(emptyView('self'), makeAnnouncement('x', { seq: 5 }), 0).state
    s = applyAnnouncement(s, makeAnnouncement('y', { seq: 1 }), 0).state
    const r = applyUnreachable(s, 'x', 10)
    assert.equal(r.outcome, 'left')
    assert.deepEqual([...r.state.members.keys()], ['y'])
    // the same announcement still travelling through gossip does not bring it back; a newer one does
    assert.equal(applyMessage(r.state, makeAnnouncement('x', { seq: 5 }), 20).outcome, 'stale')
    assert.equal(applyMessage(r.state, makeAnnouncement('x', { seq: 6 }), 20).outcome, 'joined')
    // never self, nothing for strangers
    assert.equal(applyUnreachable(s, 'self', 10).outcome, 'unknown')
    assert.equal(applyUnreachable(s, 'z', 10).state, s)
  })

  it('suspects after SUSPECT_AFTER_MS and removes after REMOVE_AFTER_MS, never self', () => {
    let s: ViewState = emptyView('self')
    s = applyAnnouncement(s, makeAnnouncement('self'), 0).state
    s = applyAnnouncement(s, makeAnnouncement('x'), 0).state
    assert.equal(livenessOf(s, 'x', SUSPECT_AFTER_MS), 'alive')
    assert.equal(livenessOf(s, 'x', SUSPECT_AFTER_MS + 1), 'suspect')
    assert.equal(expire(s, REMOVE_AFTER_MS).removed.length, 0)
    const gone = expire(s, REMOVE_AFTER_MS + 1)
    assert.deepEqual(gone.removed, ['x'])
    assert.deepEqual([...gone.state.members.keys()], ['self'])
    assert.equal(livenessOf(gone.state, 'self', 1e9), 'alive')
  })

  it('detects a silent member within the documented bound, never before a missed interval', () => {
    // member announces at t = 0, 2000, ..., dies after its last announcement at tLast; checks every 250 ms
    for (const tLast of [0, 2000, 4000]) {
      let s = emptyView('self')
      for (let t = 0; t <= tLast; t += ANNOUNCE_INTERVAL_MS) s = applyAnnouncement(s, makeAnnouncement('x', { seq: t }), t).state
      let removedAt: number | undefined
      for (let now = 0; now < tLast + 20_000 && removedAt === undefined; now += EXPIRE_CHECK_INTERVAL_MS) {
        const r = expire(s, now)
        s = r.state
        if (r.removed.includes('x')) removedAt = now
      }
      assert.ok(removedAt !== undefined)
      assert.ok(removedAt - tLast > ANNOUNCE_INTERVAL_MS * 2, 'not removed after one or two missed announcements')
      assert.ok(removedAt - tLast <= REMOVE_AFTER_MS + EXPIRE_CHECK_INTERVAL_MS, `removed ${removedAt - tLast} ms after the last announcement`)
      assert.ok(removedAt - tLast <= 6000, 'within the 6 s target')
    }
  })

  it('keeps the hash under jitter of free memory, queue, seq and RTT inside a class', () => {
    const build = (jit: number): string => {
      let s = emptyView('12D3KooWa')
      for (const id of ids) {
        s = applyAnnouncement(s, makeAnnouncement(id, {
          seq: 10 + jit,
          capabilities: { memoryBudgetBytes: 4 * 2 ** 30 + jit * 1000, freeMemoryBytes: 2 ** 30 + jit * 12345, cpuCores: 2, backend: 'cpu', computeMsPerUnit: 0.8 + jit * 0.05 },
          queueLength: jit,
          links: links(id, () => 0.4 + jit * 0.2).map((l) => ({ ...l, bandwidthBytesPerSec: jit * 1e6 }))
        }), jit * 17).state
      }
      return viewHash(canonicalView(s))
    }
    const h0 = build(0)
    for (const jit of [1, 2, 3]) assert.equal(build(jit), h0)
  })

  it('changes the hash when what the planner uses changes', () => {
    const base = (a: Partial<Announcement>): string => viewHash(canonicalView(applyAnnouncement(emptyView('x'), makeAnnouncement('x', a), 0).state))
    const h = base({})
    assert.notEqual(base({ capabilities: { memoryBudgetBytes: 8 * 2 ** 30, freeMemoryBytes: 0, cpuCores: 2, backend: 'cpu', computeMsPerUnit: 0 } }), h)
    assert.notEqual(base({ models: [{ id: 'm', sizeBytes: 10 }] }), h)
    assert.notEqual(base({ name: 'other' }), h)
  })

  it('leaves links to non-members out of the canonical view', () => {
    let s = applyAnnouncement(emptyView('a'), makeAnnouncement('a', { links: [{ peerId: 'gone', rttMs: 1, rttClassMs: 1, bandwidthBytesPerSec: 0 }, { peerId: 'b', rttMs: 20, rttClassMs: 20, bandwidthBytesPerSec: 0 }] }), 0).state
    s = applyAnnouncement(s, makeAnnouncement('b'), 0).state
    assert.deepEqual(canonicalView(s).members[0]?.links, [['b', 20]])
  })
})

describe('quantisation', () => {
  it('rtt classes follow the 1-2-5 series with 1.5x edges', () => {
    assert.deepEqual([0.1, 1.5, 1.6, 3, 3.1, 7.5, 8, 20, 29, 31, 1e7].map(rttClassMs), [1, 1, 2, 2, 5, 5, 10, 20, 20, 50, 10000])
    assert.deepEqual([0, 0.7, 0.8, 1, 2.9, 1234].map(quantise125), [0, 0.5, 1, 1, 2, 1000])
  })

  it('hysteresis keeps the class while jitter stays near an edge', () => {
    let c = nextRttClassMs(undefined, 1.4)
    assert.equal(c, 1)
    for (const v of [1.6, 1.8, 1.4, 1.7]) { c = nextRttClassMs(c, v); assert.equal(c, 1) }
    c = nextRttClassMs(c, 2.5)
    assert.equal(c, 2)
    for (const v of [1.3, 1.5, 3.3]) { c = nextRttClassMs(c, v); assert.equal(c, 2) }
    assert.equal(nextRttClassMs(c, 21), 20)
    assert.equal(nextRttClassMs(20, 0.5), 1)
  })
})
