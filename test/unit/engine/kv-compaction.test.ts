import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MIN_GAIN_PAGES, moveWaves, planCompaction } from '../../../src/engine/kv-compaction.js'
import type { PageMove } from '../../../src/engine/kv-compaction.js'
import { PagePool, SeqPages } from '../../../src/engine/kv-pages.js'

const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i)

/** page contents after applying waves in order, each read whole before it is written */
function apply (pages: number, waves: readonly PageMove[][]): Array<number | undefined> {
  const mem: Array<number | undefined> = range(0, pages)
  for (const w of waves) {
    const read = w.map((m) => mem[m.from])
    w.forEach((m, i) => { mem[m.to] = read[i] })
  }
  return mem
}

describe('KV compaction plan', () => {
  it('moves a hot sequence above a cold one down to page 0 and the cold one to the top, each in order', () => {
    const plan = planCompaction(32, [{ pages: range(0, 10), hot: false }, { pages: [10, 11, 12], hot: true }])!
    assert.deepEqual(plan.pages, [range(22, 32), [0, 1, 2]])
    // every used page goes somewhere distinct
    assert.equal(new Set(plan.moves.map((m) => m.to)).size, plan.moves.length)
  })

  it('does nothing below MIN_GAIN_PAGES of waste, or when hot sequences are already at the bottom', () => {
    assert.equal(planCompaction(32, [{ pages: range(0, MIN_GAIN_PAGES - 1), hot: false }, { pages: [MIN_GAIN_PAGES - 1], hot: true }]), undefined)
    assert.equal(planCompaction(64, [{ pages: range(0, 20), hot: true }, { pages: range(20, 40), hot: false }]), undefined)
  })

  it('each hot sequence gets consecutive pages and room to grow (half its pages); cold pages far enough above stay', () => {
    const plan = planCompaction(64, [{ pages: [0, 2, 4, 30, 31], hot: true }, { pages: [1, 3, 5, 6, 7, 8, 9, 10, 11, 12], hot: true }, { pages: [40, 41], hot: false }], { reserve: 8 })!
    assert.deepEqual(plan.pages, [[0, 1, 2, 3, 4], range(8, 18), [40, 41]])
  })

  it('a laid-out store is left alone while its sequences grow into their rooms; a sequence past its room is laid out again', () => {
    const pool = new PagePool(64)
    const used = (pages: number[][]): void => { pool.free(range(0, 64)); pool.remap(pages.flat().map((p) => ({ from: p, to: p }))) }
    const isFree = (p: number): boolean => pool.isFree(p)
    let a = range(0, 8)
    let b = range(12, 20)
    used([a, b])
    assert.equal(planCompaction(64, [{ pages: a, hot: true }, { pages: b, hot: true }], { isFree }), undefined)
    a = [...a, 8, 9, 10, 11]
    used([a, b])
    assert.equal(planCompaction(64, [{ pages: a, hot: true }, { pages: b, hot: true }], { isFree }), undefined)
    // a's next pages land above b: its span now holds b's 8 pages and more
    a = [...a, 20, 21, 22]
    used([a, b])
    const plan = planCompaction(64, [{ pages: a, hot: true }, { pages: b, hot: true }], { isFree })!
    assert.deepEqual(plan.pages, [range(0, 15), range(23, 31)])
  })

  it('interleaved hot and cold sequences: hot keep their relative order, cold ones land above the reserve', () => {
    const a = [0, 3, 6, 9, 12, 15, 18, 21, 24]
    const b = [1, 4, 7, 10, 13, 16, 19, 22, 25]
    const c = [2, 5, 8, 11, 14, 17, 20, 23, 26]
    const plan = planCompaction(64, [{ pages: a, hot: true }, { pages: b, hot: false }, { pages: c, hot: true }], { reserve: 16 })!
    const [na, nb, nc] = plan.pages
    assert.deepEqual([na, nc], [range(0, 9), range(14, 23)])
    assert.deepEqual(nb, range(64 - 9, 64))
    for (const p of plan.pages) for (let i = 1; i < p.length; i++) assert.ok(p[i]! > p[i - 1]!)
  })
})

describe('KV page move waves', () => {
  it('chains run tail first, in waves of at most maxPerWave; the result is the plan applied at once', () => {
    const moves = [{ from: 5, to: 4 }, { from: 6, to: 5 }, { from: 7, to: 6 }, { from: 0, to: 9 }, { from: 1, to: 10 }]
    const waves = moveWaves(moves, 2)
    assert.ok(waves.every((w) => w.length <= 2))
    const want: Array<number | undefined> = range(0, 12)
    for (const m of moves) want[m.to] = m.from
    const got = apply(12, waves)
    for (const m of moves) assert.equal(got[m.to], want[m.to], `page ${m.to}`)
  })

  it('a cycle goes whole into one wave', () => {
    const moves = [{ from: 0, to: 2 }, { from: 2, to: 1 }, { from: 1, to: 0 }, { from: 3, to: 4 }]
    const waves = moveWaves(moves, 1)
    const got = apply(5, waves)
    assert.deepEqual([got[2], got[1], got[0], got[4]], [0, 2, 1, 3])
    assert.ok(waves.some((w) => w.length === 3))
  })

  it('a compaction plan applied by its waves leaves every sequence with its data, pool bookkeeping consistent', () => {
    const pool = new PagePool(48)
    const seqs = [new SeqPages(), new SeqPages(), new SeqPages()]
    // interleaved growth, then the middle sequence goes idle
    for (let k = 1; k <= 10; k++) for (const s of seqs) assert.ok(s.ensure(k * 32, pool))
    const before = seqs.map((s) => [...s.pages])
    const plan = planCompaction(pool.pages, seqs.map((s, i) => ({ pages: s.pages, hot: i !== 1 })), { reserve: 16 })!
    const mem = apply(pool.pages, moveWaves(plan.moves, 3))
    pool.remap(plan.moves)
    seqs.forEach((s, i) => s.assign(plan.pages[i]!))
    seqs.forEach((s, i) => assert.deepEqual(s.pages.map((p) => mem[p]), before[i], `sequence ${i} reads its own pages`))
    assert.equal(pool.usedPages, 30)
    // consecutive pages, each followed by room for half as many
    assert.deepEqual([seqs[0]!.pages, seqs[2]!.pages], [range(0, 10), range(15, 25)])
    assert.equal(pool.nthFreeAbove(9, 1), 10)
  })
})
