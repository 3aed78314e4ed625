import assert from 'node:assert/strict'
import { test } from 'node:test'
import { addRange, missingRanges, normalizeRanges, parseContentRange, pieceBytes, planPieces, rangeBytes, rangeHeader } from '../../../src/models/range-plan.js'
import type { ByteRange } from '../../../src/models/range-plan.js'
import { prng } from '../../helpers/prng.js'

test('property: addRange keeps ranges sorted, disjoint, merged and equal to a bitmap of the same writes', () => {
  const rand = prng(7)
  for (let round = 0; round < 300; round++) {
    const size = 1 + Math.floor(rand() * 200)
    const bits = new Uint8Array(size)
    let done: ByteRange[] = []
    for (let k = 0; k < 1 + Math.floor(rand() * 12); k++) {
      const a = Math.floor(rand() * size)
      const b = Math.min(size, a + Math.floor(rand() * 40))
      done = addRange(done, [a, b])
      bits.fill(1, a, b)
    }
    for (let i = 1; i < done.length; i++) assert.ok(done[i - 1]![1] < done[i]![0], `gap between ${JSON.stringify(done)}`)
    assert.equal(rangeBytes(done), bits.reduce((s, x) => s + x, 0))
    const gaps = missingRanges(size, done)
    assert.equal(rangeBytes(gaps) + rangeBytes(done), size)
    for (const [a, b] of gaps) for (let i = a; i < b; i++) assert.equal(bits[i], 0)
    const pieces = planPieces(gaps, 1 + Math.floor(rand() * 30))
    assert.deepEqual(normalizeRanges(pieces, size), normalizeRanges(gaps, size), 'pieces cover exactly the gaps')
  }
})

test('a state file is trusted only inside [0, size)', () => {
  assert.deepEqual(normalizeRanges([[-5, 3], [10, 8], [7, 99], [3, 4]], 20), [[0, 4], [7, 20]])
})

test('piece size: one request below the minimum part, about 4 pieces per connection above', () => {
  assert.equal(pieceBytes(10 * 2 ** 20, 4, 16 * 2 ** 20), 16 * 2 ** 20)
  assert.equal(pieceBytes(4 * 2 ** 30, 4, 16 * 2 ** 20), 2 ** 28)
  assert.deepEqual(planPieces([[0, 10]], 4), [[0, 4], [4, 8], [8, 10]])
})

test('Range and Content-Range headers', () => {
  assert.equal(rangeHeader([100, 200]), 'bytes=100-199')
  assert.deepEqual(parseContentRange('bytes 100-199/1000'), { start: 100, end: 200, total: 1000 })
  assert.deepEqual(parseContentRange('bytes 0-0/*'), { start: 0, end: 1, total: undefined })
  assert.equal(parseContentRange('bytes */1000'), undefined)
  assert.equal(parseContentRange(null), undefined)
})
