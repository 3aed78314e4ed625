import assert from 'node:assert/strict'
import { test } from 'node:test'
import { splitLayersEvenly } from '../../../src/node/layer-split.js'
import { InvalidGenerationRequestError } from '../../../src/shared/errors/generation-errors.js'

const table: Array<{ n: number, k: number, want: Array<[number, number]> }> = [
  { n: 5, k: 1, want: [[0, 5]] },
  { n: 5, k: 2, want: [[0, 3], [3, 5]] },
  { n: 5, k: 5, want: [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]] },
  { n: 32, k: 3, want: [[0, 11], [11, 22], [22, 32]] }
]
for (const { n, k, want } of table) {
  test(`${n} layers into ${k}`, () => {
    assert.deepEqual(splitLayersEvenly(n, k).map((r) => [r.start, r.end]), want)
  })
}

test('property: contiguous, covering, sizes differ by at most one', () => {
  for (let n = 1; n <= 40; n++) {
    for (let k = 1; k <= n; k++) {
      const r = splitLayersEvenly(n, k)
      assert.equal(r.length, k)
      assert.equal(r[0]!.start, 0)
      assert.equal(r.at(-1)!.end, n)
      r.forEach((x, i) => { if (i > 0) assert.equal(x.start, r[i - 1]!.end) })
      const sizes = r.map((x) => x.end - x.start)
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1 && Math.min(...sizes) >= 1)
    }
  }
})

test('k outside [1, nLayers] is a typed error', () => {
  for (const k of [0, 6, 1.5, -1]) assert.throws(() => splitLayersEvenly(5, k), InvalidGenerationRequestError)
})
