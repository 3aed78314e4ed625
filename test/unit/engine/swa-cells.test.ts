import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildKqMask } from '../../../src/engine/kq-mask.js'
import { SwaCells, isMaskedSwa, swaCacheCells } from '../../../src/engine/swa-cells.js'

/** places n tokens at positions from..from+n-1 like the session does; returns their cells */
function place (c: SwaCells, from: number, n: number): number[] {
  const idxs = c.findSlot(n)
  assert.ok(idxs !== undefined)
  c.apply(idxs, Array.from({ length: n }, (_, i) => from + i))
  return idxs
}

describe('sliding-window cache cells (llama.cpp find_slot / apply_ubatch, one sequence)', () => {
  it('is_masked_swa standard: a token sees the window of n_swa positions ending at itself', () => {
    assert.equal(isMaskedSwa(8, 'standard', 2, 9), false)
    assert.equal(isMaskedSwa(8, 'standard', 1, 9), true)
    assert.equal(isMaskedSwa(4, 'chunked', 3, 4), true)
    assert.equal(isMaskedSwa(4, 'chunked', 4, 7), false)
  })

  it('the cache size is min(base, pad(n_swa + n_ubatch)) with node-llama-cpp n_ubatch = min(context, 512) + 1', () => {
    assert.equal(swaCacheCells(512, 512, 8, 512), 512)
    assert.equal(swaCacheCells(1024, 1024, 8, 512), 768)
    assert.equal(swaCacheCells(131072, 131072, 1024, 512), 1792)
    assert.equal(swaCacheCells(256, 100, 8, 512), 256)
  })

  it('fills cells in order, then reuses the cells that fell out of the window, purging older positions', () => {
    const c = new SwaCells(256, 8, 'standard')
    assert.deepEqual(place(c, 0, 200), Array.from({ length: 200 }, (_, i) => i))
    assert.equal(c.nKv(), 256)
    // 100 more: 56 free cells at the end, then cells 0..43 (positions 0..43 are outside the window of 200)
    const idxs = place(c, 200, 100)
    assert.deepEqual(idxs, [...Array.from({ length: 56 }, (_, i) => 200 + i), ...Array.from({ length: 44 }, (_, i) => i)])
    // positions older than the overwritten ones are purged: all of [posMin, posMax] stays present
    assert.equal(c.posMin(), 44)
    assert.equal(c.posMax(), 299)
    // one token: the head continues after the last used cell
    assert.deepEqual(place(c, 300, 1), [44])
  })

  it('seq_rm frees cells from a position on and restarts the search at the first freed cell', () => {
    const c = new SwaCells(256, 8, 'standard')
    place(c, 0, 20)
    c.seqRm(10, Number.MAX_SAFE_INTEGER)
    assert.equal(c.posMax(), 9)
    assert.deepEqual(place(c, 10, 2), [10, 11])
  })

  it('snapshot / restore undo a placement', () => {
    const c = new SwaCells(256, 8, 'standard')
    place(c, 0, 5)
    const s = c.snapshot()
    place(c, 5, 5)
    c.restore(s)
    assert.equal(c.posMax(), 4)
    assert.deepEqual(place(c, 5, 1), [5])
  })

  it('the mask keeps a cell iff it holds a position inside the causal window of the token', () => {
    const cellPos = new Int32Array([10, 11, 3, -1])
    const m = buildKqMask({ nKv: 4, nTokens: 2, pos0: 10, f16: false, cellPos, swa: { nSwa: 8, type: 'standard' } }) as Float32Array
    assert.deepEqual([...m], [0, -Infinity, 0, -Infinity, 0, 0, -Infinity, -Infinity])
    const base = buildKqMask({ nKv: 4, nTokens: 1, pos0: 1, f16: true }) as Uint16Array
    assert.deepEqual([...base], [0, 0, 0xfc00, 0xfc00])
  })
})
