import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MetadataReader } from '../../../src/engine/gguf/metadata-reader.js'
import { InvalidGgufError } from '../../../src/shared/errors/engine-errors.js'
import type { GgufFile, GgufValue } from '../../../src/engine/gguf/gguf-reader.js'

function reader (kv: Record<string, GgufValue>): MetadataReader {
  const gguf: GgufFile = { path: 'm.gguf', version: 3, fileBytes: 0, metadata: new Map(Object.entries(kv)), tensors: new Map(), dataOffset: 0 }
  return new MetadataReader(gguf, 'gemma3')
}

describe('MetadataReader', () => {
  it('reads numbers under the architecture prefix, with fallbacks, and names the key when missing', () => {
    const m = reader({ 'gemma3.block_count': 4, 'gemma3.expert_count': 0n, 'gemma3.attention.sliding_window': 512 })
    assert.equal(m.posInt('block_count'), 4)
    assert.equal(m.nonNegInt('expert_count'), 0)
    assert.equal(m.num('rope.freq_base', 10000), 10000)
    assert.throws(() => m.posInt('expert_count'), /gemma3\.expert_count = 0 is not a positive integer/)
    assert.throws(() => m.num('embedding_length'), (e: unknown) => e instanceof InvalidGgufError && /gemma3\.embedding_length is missing/.test(e.message))
  })

  it('broadcasts scalars to per-layer arrays and checks array lengths', () => {
    const m = reader({ 'gemma3.attention.head_count_kv': { arrayType: 4, length: 3, values: [2, 2, 4] }, 'gemma3.attention.head_count': 8 })
    assert.deepEqual(m.perLayer('attention.head_count_kv', 3), [2, 2, 4])
    assert.deepEqual(m.perLayer('attention.head_count', 2), [8, 8])
    assert.deepEqual(m.perLayer('attention.sliding_window_pattern', 2, 0), [0, 0])
    assert.throws(() => m.perLayer('attention.head_count_kv', 4), /has 3 values, expected 4/)
    // a non-constant per-layer array is not a scalar
    assert.throws(() => m.num('attention.head_count_kv'), /not a number/)
  })

  it('reads booleans and strings strictly', () => {
    const m = reader({ 'gemma3.use_parallel_residual': true, 'gemma3.rope.scaling.type': 'yarn', 'gemma3.bad': 3 })
    assert.equal(m.bool('use_parallel_residual', false), true)
    assert.equal(m.bool('absent', true), true)
    assert.equal(m.str('rope.scaling.type'), 'yarn')
    assert.throws(() => m.bool('bad', false), /not a boolean/)
    assert.throws(() => m.str('bad'), /not a string/)
  })
})
