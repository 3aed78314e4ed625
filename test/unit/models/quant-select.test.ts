import assert from 'node:assert/strict'
import { test } from 'node:test'
import { availableQuants, selectModelFiles } from '../../../src/models/quant-select.js'
import { NoGgufInRepoError, QuantNotFoundError } from '../../../src/shared/errors/pull-errors.js'
import type { HubFile } from '../../../src/models/quant-select.js'

const files = (...paths: string[]): HubFile[] => paths.map((path) => ({ path, size: 1, sha256: undefined, oid: '' }))
const pick = (fs: HubFile[], q?: string): string[] => selectModelFiles('o/r', fs, q).map((f) => f.path)

const repo = files('README.md', 'mmproj-model-f16.gguf', 'model-F16.gguf', 'model-Q2_K.gguf', 'model-Q4_K_M.gguf', 'model-Q4_K_S.gguf', 'model-Q8_0.gguf', 'model-imatrix.gguf')

test('no quant: Q4_K_M, then Q8_0, then the first model GGUF (as llama.cpp -hf)', () => {
  assert.deepEqual(pick(repo), ['model-Q4_K_M.gguf'])
  assert.deepEqual(pick(files('m-F16.gguf', 'm-Q8_0.gguf')), ['m-Q8_0.gguf'])
  assert.deepEqual(pick(files('mmproj-x.gguf', 'x.imatrix.gguf', 'm-F32.gguf', 'm-F16.gguf')), ['m-F32.gguf'])
})

test('a quant matches case-insensitively when followed by . or - ; Q4_K is not Q4_K_M', () => {
  assert.deepEqual(pick(repo, 'q4_k_s'), ['model-Q4_K_S.gguf'])
  assert.deepEqual(pick(repo, 'F16'), ['model-F16.gguf'], 'the mmproj f16 is skipped')
  assert.throws(() => pick(repo, 'Q4_K'), (err: unknown) => err instanceof QuantNotFoundError && err.message.includes('F16, Q2_K, Q4_K_M, Q4_K_S, Q8_0') && !err.message.includes('IMATRIX'))
  assert.deepEqual(pick(files('Q4_K_M/m-Q4_K_M-00002-of-00002.gguf', 'Q4_K_M/m-Q4_K_M-00001-of-00002.gguf'), 'q4_k_m'), ['Q4_K_M/m-Q4_K_M-00001-of-00002.gguf', 'Q4_K_M/m-Q4_K_M-00002-of-00002.gguf'], 'parts in a quant folder')
  assert.throws(() => pick(files('Q4_K_M/m-00001-of-00001.gguf'), 'Q4_K_M'), QuantNotFoundError, 'as llama.cpp: a folder name followed by / is no match')
})

test('split models: every part of the chosen one, in order, only with the same prefix and count', () => {
  const split = files('big-Q8_0-00003-of-00003.gguf', 'big-Q8_0-00001-of-00003.gguf', 'big-Q8_0-00002-of-00003.gguf', 'big-Q4_K_M-00001-of-00002.gguf', 'big-Q4_K_M-00002-of-00002.gguf', 'other-Q8_0-00002-of-00003.gguf')
  assert.deepEqual(pick(split, 'Q8_0'), ['big-Q8_0-00001-of-00003.gguf', 'big-Q8_0-00002-of-00003.gguf', 'big-Q8_0-00003-of-00003.gguf'])
  assert.deepEqual(pick(split), ['big-Q4_K_M-00001-of-00002.gguf', 'big-Q4_K_M-00002-of-00002.gguf'])
  assert.deepEqual(availableQuants(split), ['Q8_0', 'Q4_K_M'])
})

test('a repository without a model GGUF is its own error', () => {
  assert.throws(() => pick(files('README.md', 'mmproj-x.gguf')), NoGgufInRepoError)
  assert.throws(() => pick(files('README.md'), 'Q8_0'), NoGgufInRepoError)
})
