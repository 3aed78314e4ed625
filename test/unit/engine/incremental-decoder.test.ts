import assert from 'node:assert/strict'
import { test } from 'node:test'
import { IncrementalDecoder } from '../../../src/engine/incremental-decoder.js'

/**
 * A byte-level toy vocabulary: token i < 256 is the byte i; tokens ≥ 256 are words with a leading-space
 * marker that is dropped when the token has no context (like SentencePiece's first token).
 */
const words = new Map<number, string>([[256, '▁Hello'], [257, '▁world'], [258, ',']])
function detokenize (tokens: readonly number[], context: readonly number[]): string {
  const bytes: number[] = []
  tokens.forEach((t, i) => {
    const w = words.get(t)
    if (w === undefined) { bytes.push(t); return }
    let s = w.replaceAll('▁', ' ')
    if (i === 0 && context.length === 0 && s.startsWith(' ')) s = s.slice(1)
    bytes.push(...Buffer.from(s, 'utf8'))
  })
  return new TextDecoder().decode(new Uint8Array(bytes))
}
const bytesOf = (s: string): number[] => [...Buffer.from(s, 'utf8')]

test('multi-byte characters split across tokens are emitted once, complete', () => {
  const d = new IncrementalDecoder(detokenize)
  const tokens = [256, ...bytesOf(' €'), 258, ...bytesOf('😀'), 257]
  const out = tokens.map((t) => d.push(t))
  assert.equal(out.join('') + d.flush(), 'Hello €,😀 world')
  assert.ok(out.every((s) => !s.includes('\uFFFD')))
  assert.deepEqual(out.slice(2, 5), ['', '', '€']) // the 3 bytes of €: nothing until the last
})

test('concatenated deltas equal detokenizing everything at once', () => {
  const tokens = [256, 257, 258, ...bytesOf(' ½ 中文 ok'), 257]
  const d = new IncrementalDecoder(detokenize, { context: [1] })
  const inc = tokens.map((t) => d.push(t)).join('') + d.flush()
  assert.equal(inc, detokenize(tokens, [1]))
})

test('context decides the leading space of the first token', () => {
  assert.equal(new IncrementalDecoder(detokenize).push(257), 'world')
  assert.equal(new IncrementalDecoder(detokenize, { context: [256] }).push(257), ' world')
})

test('invalid UTF-8 is released after maxPending tokens instead of stalling', () => {
  const d = new IncrementalDecoder(detokenize, { maxPending: 3 })
  assert.equal(d.push(0xff), '')
  assert.equal(d.push(0xfe), '')
  assert.equal(d.push(0xfd), '\uFFFD\uFFFD\uFFFD')
  assert.equal(d.push(65), 'A')
})

test('flush emits an incomplete tail as replacement characters', () => {
  const d = new IncrementalDecoder(detokenize)
  assert.equal(d.push(0xe2), '')
  assert.equal(d.flush(), '\uFFFD')
  assert.equal(d.flush(), '')
})
