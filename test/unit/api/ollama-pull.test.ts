import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ollamaPullLines } from '../../../src/api/dialects/ollama-pull.js'

test('pull events in Ollama\'s NDJSON shape', () => {
  const sha = 'ab'.repeat(32)
  assert.deepEqual(ollamaPullLines({ type: 'resolving', ref: 'a/b' }), [{ status: 'pulling manifest' }])
  assert.deepEqual(ollamaPullLines({ type: 'progress', name: 'x.gguf', sha256: sha, completed: 5, total: 9 }), [{ status: 'pulling abababababab', digest: `sha256:${sha}`, total: 9, completed: 5 }])
  assert.deepEqual(ollamaPullLines({ type: 'verifying', name: 'x.gguf' }), [{ status: 'verifying sha256 digest' }])
  assert.deepEqual(ollamaPullLines({ type: 'done', id: 'x', paths: [] }), [{ status: 'writing manifest' }, { status: 'success' }])
  assert.deepEqual(ollamaPullLines({ type: 'file-done', name: 'x.gguf', receivedBytes: 1 }), [])
})
