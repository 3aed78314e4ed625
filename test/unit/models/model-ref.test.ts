import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatModelRef, isHubRef, parseModelRef } from '../../../src/models/model-ref.js'
import { InvalidModelRefError } from '../../../src/shared/errors/pull-errors.js'
import { prng } from '../../helpers/prng.js'

test('org/repo, hf.co/org/repo and huggingface.co/org/repo, with and without a quant', () => {
  assert.deepEqual(parseModelRef('ggml-org/gemma-3-1b-it-GGUF'), { kind: 'repo', repo: 'ggml-org/gemma-3-1b-it-GGUF', revision: 'main', quant: undefined })
  assert.deepEqual(parseModelRef('hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:q4_k_m'), { kind: 'repo', repo: 'bartowski/Llama-3.2-1B-Instruct-GGUF', revision: 'main', quant: 'q4_k_m' })
  assert.deepEqual(parseModelRef('huggingface.co/a/b:Q8_0'), { kind: 'repo', repo: 'a/b', revision: 'main', quant: 'Q8_0' })
  assert.equal((parseModelRef('a/b:latest') as { quant?: string }).quant, undefined, 'Ollama\'s :latest = no quant')
})

test('resolve URLs: repo, revision, file path and the endpoint they came from', () => {
  assert.deepEqual(parseModelRef('https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf'),
    { kind: 'file', repo: 'ggml-org/models', revision: 'main', file: 'tinyllamas/stories260K.gguf', endpoint: 'https://huggingface.co' })
  assert.deepEqual(parseModelRef('http://127.0.0.1:8080/mirror/o/r/resolve/abc%2Fdef/x%20y.gguf?download=true'),
    { kind: 'file', repo: 'o/r', revision: 'abc/def', file: 'x y.gguf', endpoint: 'http://127.0.0.1:8080/mirror' })
})

test('malformed references are typed errors that say what a reference looks like', () => {
  for (const bad of ['', 'justaname', 'a/b/c', 'a/b:', '-a/b', 'a--b/c', 'a/b:Q4 K', 'https://huggingface.co/a/b/blob/main/x.gguf',
    'https://huggingface.co/a/b/resolve/main/readme.md', 'ftp://huggingface.co/a/b/resolve/main/x.gguf', 'https://h/a/b/resolve/main/../x.gguf']) {
    assert.throws(() => parseModelRef(bad), (err: unknown) => err instanceof InvalidModelRefError && err.message.includes('org/repo[:QUANT]'), bad)
  }
})

test('isHubRef: paths and ids stay local, references and URLs go to the Hub', () => {
  for (const local of ['model.gguf', './a/b', '/abs/x', '~/m/x.gguf', 'models/x.gguf', 'stories260k-f32']) assert.equal(isHubRef(local), false, local)
  for (const hub of ['a/b', 'a/b:Q4_K_M', 'hf.co/a/b', 'https://huggingface.co/a/b/resolve/main/x.gguf']) assert.equal(isHubRef(hub), true, hub)
})

test('property: a formatted reference parses back to itself, with any host prefix', () => {
  const rand = prng(14)
  const alphabet = 'abcXYZ019_.-'
  const name = (): string => {
    const inner = Array.from({ length: Math.floor(rand() * 8) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('').replace(/--|\.\./g, '_')
    return `a${inner}z`
  }
  for (let i = 0; i < 500; i++) {
    const repo = `${name()}/${name()}`
    const quant = rand() < 0.5 ? undefined : ['Q4_K_M', 'q8_0', 'F16', 'IQ2_XXS', 'BF16'][Math.floor(rand() * 5)]
    const text = (['', 'hf.co/', 'huggingface.co/'][Math.floor(rand() * 3)] ?? '') + repo + (quant === undefined ? '' : `:${quant}`)
    const ref = parseModelRef(text)
    assert.deepEqual(ref, { kind: 'repo', repo, revision: 'main', quant })
    assert.deepEqual(parseModelRef(formatModelRef(ref)), ref)
  }
})
