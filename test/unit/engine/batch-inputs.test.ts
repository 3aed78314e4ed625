import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SPAN_PAD, batchBaseMask, batchInputs, batchSwaMask, segmentBaseMask, segmentSwaMask } from '../../../src/engine/batch-inputs.js'
import { DECODE_MAX, PREFILL_CHUNK, UBATCH, planStep } from '../../../src/engine/batch-step.js'
import { buildKqMask } from '../../../src/engine/kq-mask.js'
import { PAGE, PagePool, SeqPages } from '../../../src/engine/kv-pages.js'

describe('KV pages', () => {
  it('a sequence gets pages in increasing order; the pool (a multiple of 256 cells) must grow when none is free above its last', () => {
    const pool = new PagePool(1)
    assert.equal(pool.cells, 256)
    const a = new SeqPages()
    const b = new SeqPages()
    assert.ok(a.ensure(1, pool))
    assert.ok(b.ensure(256 - PAGE, pool))
    assert.deepEqual([a.pages, b.pages], [[0], [1, 2, 3, 4, 5, 6, 7]])
    assert.equal(a.ensure(PAGE + 1, pool), false)
    pool.grow(9)
    assert.equal(pool.cells, 512)
    assert.ok(a.ensure(PAGE + 1, pool))
    assert.deepEqual(a.pages, [0, 8])
    assert.equal(a.cellOf(PAGE + 5), 8 * PAGE + 5)
    b.release(pool)
    a.shrink(1, pool)
    assert.equal(pool.usedPages, 1)
    const c = new SeqPages()
    assert.ok(c.ensure(3 * PAGE, pool))
    assert.deepEqual(c.pages, [1, 2, 3])
  })
})

describe('batch inputs', () => {
  it('one sequence on pages 0 … 9 gives the solo mask of kq-mask.ts', () => {
    const pool = new PagePool(16)
    const pages = new SeqPages()
    pages.ensure(300, pool)
    const segs = [{ pos0: 290, n: 10, pages, outRows: [9] }]
    const b = batchInputs(segs)
    assert.equal(b.nKv, 512)
    assert.deepEqual([...b.cells], Array.from({ length: 10 }, (_, i) => 290 + i))
    assert.deepEqual([...b.outIds], [9])
    for (const f16 of [false, true]) assert.deepEqual(batchBaseMask(segs, b.nKv, f16), buildKqMask({ nKv: b.nKv, nTokens: 10, pos0: 290, f16 }))
  })

  it('two sequences see only their own cells; rows and cells follow segment order; the cells seen are padded to 256', () => {
    const pool = new PagePool(16)
    const a = new SeqPages()
    const b = new SeqPages()
    a.ensure(1, pool)
    b.ensure(1, pool)
    a.ensure(PAGE + 1, pool)
    const segs = [{ pos0: PAGE, n: 1, pages: a, outRows: [0] }, { pos0: 3, n: 2, pages: b, outRows: [1] }]
    const inp = batchInputs(segs)
    assert.deepEqual([...inp.cells], [2 * PAGE, PAGE + 3, PAGE + 4])
    assert.deepEqual([...inp.pos], [PAGE, 3, 4])
    assert.deepEqual([...inp.outIds], [0, 2])
    assert.equal(inp.nKv, 256)
    const m = batchBaseMask(segs, inp.nKv, false) as Float32Array
    const visible = (row: number): number[] => [...m.subarray(row * inp.nKv, (row + 1) * inp.nKv)].flatMap((v, j) => v === 0 ? [j] : [])
    assert.deepEqual(visible(0), [...Array.from({ length: PAGE }, (_, j) => j), 2 * PAGE])
    assert.deepEqual(visible(1), [PAGE, PAGE + 1, PAGE + 2, PAGE + 3])
    assert.deepEqual(visible(2), [PAGE, PAGE + 1, PAGE + 2, PAGE + 3, PAGE + 4])
  })

  it('a sliding-window ring on page 8 matches the solo mask moved by 256 cells', () => {
    const pool = new PagePool(16)
    const other = new SeqPages()
    other.ensure(256, pool)
    const ring = new SeqPages()
    ring.ensure(8, pool)
    const base = new SeqPages()
    base.ensure(20, new PagePool(1))
    const cellPos = Int32Array.from([8, 9, 10, 11, 4, 5, 6, 7])
    const segs = [{ pos0: 10, n: 2, pages: base, swa: { slots: [2, 3], cellPos, pages: ring }, outRows: [1] }]
    const inp = batchInputs(segs)
    assert.deepEqual([...inp.swaCells!], [256 + 2, 256 + 3])
    assert.equal(inp.nKvSwa, 512)
    const m = batchSwaMask(segs, inp.nKvSwa, false, 4, 'standard') as Float32Array
    const solo = buildKqMask({ nKv: 256, nTokens: 2, pos0: 10, f16: false, cellPos, swa: { nSwa: 4, type: 'standard' } }) as Float32Array
    for (let r = 0; r < 2; r++) {
      assert.deepEqual(m.subarray(r * 512 + 256, (r + 1) * 512), solo.subarray(r * 256, (r + 1) * 256))
      assert.ok(m.subarray(r * 512, r * 512 + 256).every((v) => v === -Infinity))
    }
  })
})

describe('per-sequence attention spans', () => {
  it('each sequence spans its own pages (padded to SPAN_PAD); its mask is the whole-graph mask cut to that span', () => {
    const pool = new PagePool(64)
    const seqs = Array.from({ length: 4 }, () => new SeqPages())
    // a long one first (pages 0 … 9), then three short ones above it
    seqs[0]!.ensure(300, pool)
    for (const s of seqs.slice(1)) s.ensure(20, pool)
    const segs = [{ pos0: 299, n: 1, pages: seqs[0]!, outRows: [0] }, ...seqs.slice(1).map((pages, i) => ({ pos0: 10 + i, n: 2, pages, outRows: [1] }))]
    const inp = batchInputs(segs, { base: pool.cells, swa: 0 })
    assert.equal(inp.nKv, 512)
    assert.deepEqual(inp.spans, [{ cell0: 0, nKv: 384 }, { cell0: 320, nKv: SPAN_PAD }, { cell0: 352, nKv: SPAN_PAD }, { cell0: 384, nKv: SPAN_PAD }])
    for (const f16 of [false, true]) {
      const whole = batchBaseMask(segs, inp.nKv, f16)
      let row = 0
      segs.forEach((sg, i) => {
        const sp = inp.spans![i]!
        const m = segmentBaseMask(sg, sp, f16)
        for (let r = 0; r < sg.n; r++) {
          const w = whole.subarray((row + r) * inp.nKv, (row + r + 1) * inp.nKv)
          assert.deepEqual(m.subarray(r * sp.nKv, (r + 1) * sp.nKv), w.subarray(sp.cell0, sp.cell0 + sp.nKv))
          // nothing visible outside the span
          assert.ok([...w.subarray(0, sp.cell0), ...w.subarray(sp.cell0 + sp.nKv)].every((v) => f16 ? v === 0xfc00 : v === -Infinity))
        }
        row += sg.n
      })
    }
  })

  it('no spans for one sequence, or when the spans would cover about what the whole graph does', () => {
    const pool = new PagePool(16)
    const a = new SeqPages()
    const b = new SeqPages()
    // interleaved pages: each sequence spans nearly everything
    for (let k = 1; k <= 6; k++) { a.ensure(k * PAGE, pool); b.ensure(k * PAGE, pool) }
    assert.equal(batchInputs([{ pos0: 0, n: 1, pages: a, outRows: [0] }], { base: pool.cells, swa: 0 }).spans, undefined)
    assert.equal(batchInputs([{ pos0: 6 * PAGE - 1, n: 1, pages: a, outRows: [0] }, { pos0: 6 * PAGE - 1, n: 1, pages: b, outRows: [0] }], { base: pool.cells, swa: 0 }).spans, undefined)
  })

  it('a sliding-window ring: the segment mask is the whole-graph ring mask cut to the span', () => {
    const pool = new PagePool(16)
    const other = new SeqPages()
    other.ensure(256, pool)
    const ring = new SeqPages()
    ring.ensure(8, pool)
    const ring2 = new SeqPages()
    ring2.ensure(8, pool)
    const base = new SeqPages()
    base.ensure(20, new PagePool(1))
    const cellPos = Int32Array.from([8, 9, 10, 11, 4, 5, 6, 7])
    const segs = [{ pos0: 10, n: 2, pages: base, swa: { slots: [2, 3], cellPos, pages: ring }, outRows: [1] }, { pos0: 10, n: 2, pages: base, swa: { slots: [2, 3], cellPos, pages: ring2 }, outRows: [1] }]
    const inp = batchInputs(segs, { base: 256, swa: pool.cells })
    assert.deepEqual(inp.spansSwa, [{ cell0: 256, nKv: SPAN_PAD }, { cell0: 288, nKv: SPAN_PAD }])
    const whole = batchSwaMask(segs, inp.nKvSwa, false, 4, 'standard')
    const m = segmentSwaMask(segs[1]!, inp.spansSwa![1]!, false, 4, 'standard')
    for (let r = 0; r < 2; r++) assert.deepEqual(m.subarray(r * SPAN_PAD, (r + 1) * SPAN_PAD), whole.subarray((2 + r) * inp.nKvSwa + 288, (2 + r) * inp.nKvSwa + 288 + SPAN_PAD))
  })
})

describe('step plan', () => {
  it('alone: a whole ubatch; together: decoders first, then prefill chunks within one ubatch', () => {
    assert.deepEqual(planStep([{ remaining: 1000, pipelineDepth: 1 }], 0), [UBATCH])
    assert.deepEqual(planStep([{ remaining: 1000, pipelineDepth: 1 }, { remaining: 1, pipelineDepth: 1 }, { remaining: 600, pipelineDepth: 1 }], 0), [PREFILL_CHUNK, 1, UBATCH - 1 - PREFILL_CHUNK])
    assert.deepEqual(planStep([{ remaining: DECODE_MAX, pipelineDepth: 1 }, { remaining: 1, pipelineDepth: 1 }], 0), [DECODE_MAX, 1])
  })

  it('a store larger than one context caps the rows of a step (decoders first)', () => {
    assert.deepEqual(planStep([{ remaining: 1000, pipelineDepth: 1 }], 0, 100), [100])
    assert.deepEqual(planStep([{ remaining: 1000, pipelineDepth: 1 }, { remaining: 1, pipelineDepth: 1 }], 0, 64), [63, 1])
    assert.deepEqual(planStep([{ remaining: 1000, pipelineDepth: 1 }], 0, 0), [1])
  })

  it('a pipeline of depth 2 with 8 live sequences runs its decoders in groups of 4', () => {
    const eight = Array.from({ length: 8 }, () => ({ remaining: 1, pipelineDepth: 2 }))
    assert.deepEqual(planStep(eight, 8), [1, 1, 1, 1, 0, 0, 0, 0])
    assert.deepEqual(planStep(eight.slice(0, 3), 8), [1, 1, 1])
  })
})
