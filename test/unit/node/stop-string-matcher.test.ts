import assert from 'node:assert/strict'
import { test } from 'node:test'
import { StopStringMatcher } from '../../../src/node/stop-string-matcher.js'

/** Feeds chunks; returns what was emitted per push, the full output and whether it stopped. */
function run (stops: string[], chunks: string[]): { emitted: string[], output: string, stopped: boolean } {
  const m = new StopStringMatcher(stops)
  const emitted: string[] = []
  for (const c of chunks) {
    const r = m.push(c)
    emitted.push(r.text)
    if (r.stopped) return { emitted, output: emitted.join(''), stopped: true }
  }
  emitted.push(m.flush())
  return { emitted, output: emitted.join(''), stopped: false }
}

const table: Array<{ name: string, stops: string[], chunks: string[], output: string, stopped: boolean }> = [
  { name: 'no stops: passes through', stops: [], chunks: ['a', 'b', 'c'], output: 'abc', stopped: false },
  { name: 'stop inside one chunk', stops: ['END'], chunks: ['abcENDxyz'], output: 'abc', stopped: true },
  { name: 'stop split across chunks', stops: ['END'], chunks: ['ab', 'cE', 'N', 'Dxyz'], output: 'abc', stopped: true },
  { name: 'partial match that fails is released', stops: ['END'], chunks: ['aE', 'N', 'x'], output: 'aENx', stopped: false },
  { name: 'partial match pending at the end is flushed', stops: ['END'], chunks: ['aEN'], output: 'aEN', stopped: false },
  { name: 'earliest of several stops wins', stops: ['yz', 'bc'], chunks: ['abcxyz'], output: 'a', stopped: true },
  { name: 'stop at the very start emits nothing', stops: ['\n\n'], chunks: ['\n', '\nmore'], output: '', stopped: true },
  { name: 'overlapping prefixes', stops: ['aab'], chunks: ['a', 'a', 'a', 'b'], output: 'a', stopped: true },
  { name: 'multi-char unicode stop', stops: ['ünd'], chunks: ['x ü', 'n', 'd'], output: 'x ', stopped: true },
  { name: 'empty stop strings are ignored', stops: [''], chunks: ['abc'], output: 'abc', stopped: false }
]

for (const row of table) {
  test(row.name, () => {
    const r = run(row.stops, row.chunks)
    assert.equal(r.output, row.output)
    assert.equal(r.stopped, row.stopped)
  })
}

test('text that could start a stop string is held back, never emitted early', () => {
  const m = new StopStringMatcher(['### Human'])
  assert.deepEqual(m.push('Hello #'), { text: 'Hello ', stopped: false })
  assert.deepEqual(m.push('##'), { text: '', stopped: false })
  assert.deepEqual(m.push(' Hu'), { text: '', stopped: false })
  assert.deepEqual(m.push('man: hi'), { text: '', stopped: true, matched: '### Human' })
})

test('property: output is the longest stop-free prefix of the concatenation', () => {
  const alphabet = 'abE'
  let seed = 1
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  for (let trial = 0; trial < 300; trial++) {
    const chunks = Array.from({ length: 1 + rnd(6) }, () => Array.from({ length: rnd(4) }, () => alphabet[rnd(3)]).join(''))
    const stops = ['Eb', 'aaa']
    const whole = chunks.join('')
    const idx = Math.min(...stops.map((s) => { const i = whole.indexOf(s); return i === -1 ? Infinity : i }))
    const r = run(stops, chunks)
    assert.equal(r.output, Number.isFinite(idx) ? whole.slice(0, idx) : whole, JSON.stringify(chunks))
    assert.equal(r.stopped, Number.isFinite(idx))
  }
})
