/** AdmissionGate: limit, FIFO queue, refusal beyond the queue with a Retry-After estimate, abort while queued, a growing limit. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AdmissionGate, MAX_SEQUENCES, maxSequencesFor } from '../../../src/node/admission-gate.js'
import { ServerBusyError } from '../../../src/shared/errors/generation-errors.js'
import { AbortedError } from '../../../src/shared/errors/exo-error.js'

const never = new AbortController().signal

test('maxSequencesFor: free memory in full-context KV caches plus the reserved ones, within [1, MAX_SEQUENCES]', () => {
  assert.equal(maxSequencesFor(10_000, 1000), 10)
  assert.equal(maxSequencesFor(10_999, 1000, 1), 11)
  assert.equal(maxSequencesFor(-5, 1000), 1)
  assert.equal(maxSequencesFor(1e12, 1), MAX_SEQUENCES)
  assert.equal(maxSequencesFor(1000, 0), MAX_SEQUENCES)
})

test('limit 2, queue 1: two run, one waits in order, the fourth is refused with a Retry-After from the hold times', async () => {
  let now = 0
  const gate = new AdmissionGate({ limit: () => 2, maxQueue: () => 1, now: () => now })
  const r1 = await gate.acquire(never)
  const r2 = await gate.acquire(never)
  let third = false
  const p3 = gate.acquire(never).then((r) => { third = true; return r })
  await Promise.resolve()
  assert.deepEqual(gate.stats, { limit: 2, capacityBytes: Infinity, usedBytes: 0, maxQueue: 1, running: 2, queued: 1, admitted: 2, rejected: 0 })
  await assert.rejects(gate.acquire(never), (e: unknown) => e instanceof ServerBusyError && e.code === 'BUSY' && e.retryAfterSeconds === 1)
  now = 30_000
  r1()
  r1() // a second release is a no-op
  const r3 = await p3
  assert.ok(third)
  assert.deepEqual(gate.stats, { limit: 2, capacityBytes: Infinity, usedBytes: 0, maxQueue: 1, running: 2, queued: 0, admitted: 3, rejected: 1 })
  // mean hold 30 s, 2 ahead (1 queued + the caller) over 2 slots → 30 s
  void gate.acquire(never)
  await assert.rejects(gate.acquire(never), (e: unknown) => e instanceof ServerBusyError && e.retryAfterSeconds === 30)
  r2(); r3()
})

test('a queued request whose client goes away leaves the queue; a raised limit admits waiters', async () => {
  const limit = { n: 1 }
  const gate = new AdmissionGate({ limit: () => limit.n, maxQueue: () => 4 })
  const r1 = await gate.acquire(never)
  const ctrl = new AbortController()
  const gone = gate.acquire(ctrl.signal)
  const waiting = gate.acquire(never)
  await Promise.resolve()
  assert.equal(gate.stats.queued, 2)
  ctrl.abort()
  await assert.rejects(gone, AbortedError)
  assert.equal(gate.stats.queued, 1)
  limit.n = 2
  gate.pump()
  const r2 = await waiting
  assert.equal(gate.stats.running, 2)
  r1(); r2()
  assert.equal(gate.stats.running, 0)
  await assert.rejects(gate.acquire(AbortSignal.abort()), AbortedError)
})

test('KV capacity: a sequence waits until its bytes fit beside the running ones; one alone always runs', async () => {
  const gate = new AdmissionGate({ limit: () => 8, maxQueue: () => 4, capacityBytes: () => 100 })
  const big = await gate.acquire(never, 150)
  assert.equal(gate.stats.usedBytes, 150, 'alone, a sequence larger than the capacity still runs')
  let small = false
  const p = gate.acquire(never, 30).then((r) => { small = true; return r })
  await Promise.resolve()
  assert.equal(small, false)
  big()
  const r1 = await p
  const r2 = await gate.acquire(never, 70)
  assert.deepEqual([gate.stats.running, gate.stats.usedBytes], [2, 100])
  const p3 = gate.acquire(never, 1)
  await Promise.resolve()
  assert.equal(gate.stats.queued, 1)
  r1()
  const r3 = await p3
  r2(); r3()
  assert.equal(gate.stats.usedBytes, 0)
})
