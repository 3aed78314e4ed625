import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { GROUP_WAIT_MS, IDLE_MS, groupSize, groupWaitMs, planStep } from '../../../src/engine/batch-step.js'
import { StepGroups } from '../../../src/engine/step-groups.js'

interface Seq { pipelineDepth: number, disposed: boolean, name: string }
const seqs = (n: number, depth = 2): Seq[] => Array.from({ length: n }, (_, i) => ({ pipelineDepth: depth, disposed: false, name: `s${i}` }))
const pending = (ss: Seq[], at = 0, remaining = 1): Array<{ seq: Seq, remaining: number, at: number }> => ss.map((seq) => ({ seq, remaining, at }))

describe('pipeline groups (pure)', () => {
  it('a ring of S stages runs its active sequences in S groups', () => {
    assert.equal(groupSize(8, 2), 4)
    assert.equal(groupSize(8, 3), 3)
    assert.equal(groupSize(16, 2), 8)
    assert.equal(groupSize(1, 2), 1)
    assert.equal(groupSize(0, 2), 1)
  })

  it('a step waits for members of its group still in the ring, unless it is full; at most GROUP_WAIT_MS', () => {
    assert.equal(groupWaitMs({ pending: 1, inFlight: 3, cap: 4, waitedMs: 0, stepMs: 20 }), GROUP_WAIT_MS)
    assert.equal(groupWaitMs({ pending: 1, inFlight: 3, cap: 4, waitedMs: 0, stepMs: 0.5 }), 0.5, 'never longer than a step takes')
    assert.equal(groupWaitMs({ pending: 1, inFlight: 3, cap: 4, waitedMs: 1.5, stepMs: 20 }), GROUP_WAIT_MS - 1.5)
    assert.equal(groupWaitMs({ pending: 1, inFlight: 3, cap: 4, waitedMs: GROUP_WAIT_MS + 1, stepMs: 20 }), 0)
    assert.equal(groupWaitMs({ pending: 4, inFlight: 0, cap: 4, waitedMs: 0, stepMs: 20 }), 0, 'the whole group is here')
    assert.equal(groupWaitMs({ pending: 4, inFlight: 2, cap: 4, waitedMs: 0, stepMs: 20 }), 0, 'a full step does not wait')
    assert.equal(groupWaitMs({ pending: 0, inFlight: 2, cap: 4, waitedMs: 0, stepMs: 20 }), 0)
  })

  it('two groups of a 2-stage ring stay whole: the first member back waits for the rest, the others step at once', () => {
    const g = new StepGroups<Seq>()
    const all = seqs(8)
    const [a, b] = [all.slice(0, 4), all.slice(4)]
    // nothing stepped yet: no group to wait for (the first step of 8 prefills goes at once)
    assert.equal(g.waitMs(all, pending(all), 0), 0)
    g.record(a, -10, 10)
    g.record(b, 0, 20)
    // a's first member is back at 30 while the other three are still in the next stage
    assert.equal(g.waitMs(all, pending([a[0]!], 30), 30), GROUP_WAIT_MS)
    assert.equal(g.waitMs(all, pending([a[0]!], 30), 31), GROUP_WAIT_MS - 1)
    // all of a is back: go
    assert.equal(g.waitMs(all, pending(a, 30), 31), 0)
    // the group cap counts the ring's sequences: 8 in 2 stages → 4 per step
    assert.deepEqual(planStep(all.map(() => ({ remaining: 1, pipelineDepth: 2 })), g.active(all, new Set(all), 31)), [1, 1, 1, 1, 0, 0, 0, 0])
  })

  it('a member that does not come back (its request ended) drops out of the group after one wait', () => {
    const g = new StepGroups<Seq>()
    const all = seqs(8)
    const a = all.slice(0, 4)
    g.record(a, -20, 0)
    g.record(all.slice(4), -20, 0)
    const back = a.slice(0, 3)
    assert.equal(g.waitMs(all, pending(back, 5), 5), GROUP_WAIT_MS)
    assert.equal(g.waitMs(all, pending(back, 5), 5 + GROUP_WAIT_MS), 0)
    // they step without it: the next round they are a group of 3
    g.record(back, 0, 20)
    assert.equal(g.waitMs(all, pending(back.slice(0, 1), 40), 40), GROUP_WAIT_MS)
    assert.equal(g.waitMs(all, pending(back, 40), 40), 0)
    // a disposed member is never waited for
    a[1]!.disposed = true
    assert.equal(g.waitMs(all, pending([a[0]!], 60), 60), GROUP_WAIT_MS, 'a[2] is still out')
    a[2]!.disposed = true
    assert.equal(g.waitMs(all, pending([a[0]!], 60), 60), 0)
  })

  it('a group that split merges again: a part-filled group waits for the group right behind it when that fits', () => {
    const g = new StepGroups<Seq>()
    const all = seqs(8)
    const [a, b, c] = [all.slice(0, 3), all.slice(3, 4), all.slice(4)]
    // one member of a group of 4 came back late once: now 3, then 1 (8 ms behind), then 4 go round the ring
    g.record(a, 0, 10)
    g.record(b, 10, 18)
    g.record(c, 18, 35)
    // a is back (all 3): it waits for b (trail 8 ms + GROUP_WAIT_MS), not for c (4 would not fit beside it)
    assert.equal(g.waitMs(all, pending(a, 40), 40), 8 + GROUP_WAIT_MS)
    assert.equal(g.waitMs(all, pending(a, 40), 45), 8 + GROUP_WAIT_MS - 5)
    assert.equal(g.waitMs(all, pending(a, 40), 40 + 8 + GROUP_WAIT_MS), 0, 'b did not come in time: a goes alone')
    assert.equal(g.waitMs(all, pending([...a, ...b], 40), 41), 0, 'b is here: the step takes both')
    assert.equal(g.waitMs(all, pending(c, 40), 40), 0, 'a full group never waits')
    // groups of 2, 3, 3: the 3 behind the 2 would not fit beside it (cap 4)
    const h = new StepGroups<Seq>()
    h.record(all.slice(0, 2), 0, 10)
    h.record(all.slice(2, 5), 10, 20)
    h.record(all.slice(5), 20, 30)
    assert.equal(h.waitMs(all, pending(all.slice(0, 2), 40), 40), 0)
    // the step behind a part-filled group prefilled a new request: that one comes back only after the ring prefilled it
    const p = new StepGroups<Seq>()
    p.record(a, 0, 10)
    p.record(b, 10, 300, false)
    p.record(c, 300, 317)
    assert.equal(p.waitMs(all, pending(a, 320), 320), 0)
  })

  it('idle sequences (retained KV) count neither in the ring nor as members on their way back', () => {
    const g = new StepGroups<Seq>()
    const all = seqs(6)
    g.record(all, -20, 0)
    const running = all.slice(0, 2)
    // 4 of the 6 finished long ago: the ring holds 2 → groups of 1 in a 2-stage ring
    const later = IDLE_MS + 100
    assert.equal(g.active(all, new Set(running), later), 2)
    assert.deepEqual(planStep(running.map(() => ({ remaining: 1, pipelineDepth: 2 })), g.active(all, new Set(running), later)), [1, 0])
    assert.equal(g.waitMs(all, pending([running[0]!], later), later), 0, 'only idle members missing')
    g.forget(all[1]!)
    assert.equal(g.active(all, new Set([all[0]!]), later), 1)
    // a request that ended a moment ago (its KV retained) is out of the ring once the shard stepped 3 · depth + 1 times without it
    const h = new StepGroups<Seq>()
    h.record(all, 0, 10)
    for (let i = 0; i < 7; i++) h.record(running, 10 + 10 * i, 20 + 10 * i)
    assert.equal(h.active(all, new Set(running), 100), 6, '7 steps: still counted')
    h.record(running, 90, 100)
    assert.equal(h.active(all, new Set(running), 101), 2, '8 steps later, 90 ms after: out of the ring')
  })

  it('one node alone (depth 1) waits for the sequences of its last step, so a fragment rejoins; prefill chunks never wait', () => {
    const g = new StepGroups<Seq>()
    const solo = seqs(8, 1)
    const [seven, one] = [solo.slice(0, 7), solo.slice(7)]
    // 7 stepped, then the 8th alone: the 7 are back and wait for it (the ring of a pipeline would not)
    g.record(seven, -40, -20)
    g.record(one, -20, 0)
    assert.equal(g.waitMs(solo, pending(seven, 0), 1), GROUP_WAIT_MS - 1)
    assert.equal(g.waitMs(solo, pending(solo, 0), 1), 0, 'all 8 here: go')
    // the 8th waits for nobody of an older step
    g.record(seven, 0, 20)
    assert.equal(g.waitMs(solo, pending(one, 21), 21), GROUP_WAIT_MS, 'the 7 of the last step are on their way')
    assert.equal(g.waitMs(solo, pending(one, 5), 21), GROUP_WAIT_MS - 1, 'submitted during the last step: the wait counts from its end')
    assert.equal(g.waitMs(solo, pending(one, 5), 20 + GROUP_WAIT_MS), 0)
    // a disposed or idle member is never waited for
    for (const s of seven) s.disposed = true
    assert.equal(g.waitMs(solo, pending(one, 21), 21), 0)
    for (const s of seven) s.disposed = false
    assert.equal(g.waitMs(solo, pending(one, 20 + IDLE_MS), 20 + IDLE_MS), 0)
    const piped = seqs(4)
    g.record(piped, -20, 0)
    assert.equal(g.waitMs(piped, pending(piped.slice(0, 1), 1, 100), 1), 0)
  })
})
