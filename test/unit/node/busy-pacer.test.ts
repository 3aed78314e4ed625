import assert from 'node:assert/strict'
import { test } from 'node:test'
import { busyPacer } from '../../../src/node/peer-fetch/busy-pacer.js'

test('busyPacer: no wait while idle; while busy, pieces are spaced to the busy rate', async () => {
  let busy = false
  const pace = busyPacer(() => busy, 10_000_000) // 10 MB/s: 1 MB per 100 ms
  const signal = AbortSignal.timeout(10_000)
  let t0 = performance.now()
  for (let i = 0; i < 5; i++) await pace(1_000_000, signal)
  assert.ok(performance.now() - t0 < 50, 'idle: no pacing')
  busy = true
  t0 = performance.now()
  for (let i = 0; i < 4; i++) await pace(1_000_000, signal)
  // the first piece goes at once, the next three wait 100 ms each
  assert.ok(performance.now() - t0 >= 295, `busy: ${performance.now() - t0} ms for 4 pieces of 1 MB at 10 MB/s`)
  busy = false
  t0 = performance.now()
  await pace(1_000_000, signal)
  assert.ok(performance.now() - t0 < 50, 'idle again: at once')
})
