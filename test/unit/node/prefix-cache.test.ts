/** PrefixCache: longest-prefix choice, exclusive take, LRU eviction under a budget that moves, disposal. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PrefixCache, commonPrefixLength } from '../../../src/node/prefix-cache.js'

const seq = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i)

function cache (budget: { bytes: number }): { c: PrefixCache<string>, disposed: string[] } {
  const disposed: string[] = []
  return { c: new PrefixCache<string>({ budgetBytes: () => budget.bytes, dispose: (v) => { disposed.push(v) }, minMatch: 4 }), disposed }
}

test('commonPrefixLength', () => {
  assert.equal(commonPrefixLength([1, 2, 3], [1, 2, 4]), 2)
  assert.equal(commonPrefixLength([], [1]), 0)
  assert.equal(commonPrefixLength([1, 2], [1, 2, 3]), 2)
})

test('take picks the longest common prefix at least minMatch long and removes the entry', () => {
  const { c } = cache({ bytes: 100 })
  c.put({ id: 'a', tokens: seq(10), bytes: 10, value: 'A' })
  c.put({ id: 'b', tokens: [...seq(6), 99, 98], bytes: 10, value: 'B' })
  assert.equal(c.take([...seq(3), 7, 7, 7]), undefined, 'a 3-token match is below minMatch')
  const hit = c.take([...seq(8), 50])
  assert.equal(hit?.entry.id, 'a')
  assert.equal(hit.common, 8)
  assert.equal(c.size, 1)
  assert.equal(c.bytes, 10)
  assert.equal(c.take(seq(12), (e) => e.id !== 'b'), undefined, 'usable() rejects b')
  assert.deepEqual({ ...c.stats }, { hits: 1, misses: 2, evictions: 0, reusedTokens: 0 })
  assert.equal(c.takeById('b')?.value, 'B')
  assert.equal(c.size, 0)
})

test('the least recently used entries go first when the budget shrinks; an entry larger than the budget is not kept', () => {
  const budget = { bytes: 30 }
  const { c, disposed } = cache(budget)
  c.put({ id: 'a', tokens: seq(5), bytes: 10, value: 'A' })
  c.put({ id: 'b', tokens: seq(5, 100), bytes: 10, value: 'B' })
  c.put({ id: 'c', tokens: seq(5, 200), bytes: 10, value: 'C' })
  c.put({ id: 'd', tokens: seq(5, 300), bytes: 10, value: 'D' })
  assert.deepEqual(disposed, ['A'])
  budget.bytes = 15
  c.trim()
  assert.deepEqual(disposed, ['A', 'B', 'C'])
  c.put({ id: 'e', tokens: seq(5, 400), bytes: 20, value: 'E' })
  assert.deepEqual(disposed, ['A', 'B', 'C', 'D', 'E'])
  assert.equal(c.bytes, 0)
  assert.equal(c.stats.evictions, 5)
  c.put({ id: 'f', tokens: seq(5), bytes: 5, value: 'F' })
  c.put({ id: 'f', tokens: seq(6), bytes: 5, value: 'F2' })
  assert.deepEqual(disposed.slice(-1), ['F'], 'the same id replaces (and frees) the older entry')
  c.clear()
  assert.deepEqual(disposed.slice(-1), ['F2'])
  assert.equal(c.size, 0)
})

test('at most maxEntries entries are kept, the least recently used go first', () => {
  const disposed: string[] = []
  const c = new PrefixCache<string>({ budgetBytes: () => 1e9, dispose: (v) => { disposed.push(v) }, maxEntries: 2 })
  for (const v of ['A', 'B', 'C']) c.put({ id: v, tokens: seq(20), bytes: 1, value: v })
  assert.deepEqual(disposed, ['A'])
  assert.equal(c.size, 2)
})
