import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ggufModelName, parseSplitGgufName, splitGgufPath, splitGgufPaths } from '../../../src/shared/split-gguf-name.js'

test('parses llama.cpp split names: prefix with directories, 0-based part, count', () => {
  assert.deepEqual(parseSplitGgufName('/m/Qwen3-235B-A22B-Q4_K_M-00001-of-00005.gguf'), { prefix: '/m/Qwen3-235B-A22B-Q4_K_M', no: 0, count: 5 })
  assert.deepEqual(parseSplitGgufName('x-00003-of-00003.gguf'), { prefix: 'x', no: 2, count: 3 })
  assert.deepEqual(parseSplitGgufName('a-b-00001-of-00002-00002-of-00002.gguf'), { prefix: 'a-b-00001-of-00002', no: 1, count: 2 })
})

test('names that are not split parts parse to undefined', () => {
  for (const name of ['model.gguf', 'model-00001-of-00005.bin', '-00001-of-00002.gguf', 'm-0001-of-0002.gguf', 'm-000001-of-000002.gguf',
    'm-00000-of-00002.gguf', 'm-00003-of-00002.gguf', 'm-00001-of-00000.gguf', 'm-00001-of-99999.gguf', 'm-00001-of-00002.GGUF', 'm-00001-of-00002.gguf.part']) {
    assert.equal(parseSplitGgufName(name), undefined, name)
  }
})

test('formats paths as llama_split_path does (%05d, 1-based) and round-trips', () => {
  assert.equal(splitGgufPath('dir/m', 0, 3), 'dir/m-00001-of-00003.gguf')
  assert.equal(splitGgufPath('m', 65534, 65535), 'm-65535-of-65535.gguf')
  assert.deepEqual(splitGgufPaths('m', 2), ['m-00001-of-00002.gguf', 'm-00002-of-00002.gguf'])
  for (const [no, count] of [[0, 1], [4, 12], [99, 100]] as const) {
    assert.deepEqual(parseSplitGgufName(splitGgufPath('p', no, count)), { prefix: 'p', no, count })
  }
  assert.throws(() => splitGgufPath('m', 3, 3), RangeError)
  assert.throws(() => splitGgufPath('m', -1, 3), RangeError)
  assert.throws(() => splitGgufPath('m', 0, 0), RangeError)
  assert.throws(() => splitGgufPath('m', 0, 65536), RangeError)
  assert.throws(() => splitGgufPath('m', 0.5, 3), RangeError)
})

test('model names drop .gguf and the split suffix', () => {
  assert.equal(ggufModelName('stories260k-f32.gguf'), 'stories260k-f32')
  assert.equal(ggufModelName('Model.GGUF'), 'Model')
  assert.equal(ggufModelName('Kimi-K2-Q2_K-00001-of-00008.gguf'), 'Kimi-K2-Q2_K')
  assert.equal(ggufModelName('Kimi-K2-Q2_K-00004-of-00008.gguf'), 'Kimi-K2-Q2_K')
  assert.equal(ggufModelName('plain'), 'plain')
})
