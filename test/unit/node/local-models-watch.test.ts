import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LocalModelsWatch } from '../../../src/node/local-models-watch.js'

test('LocalModelsWatch: a changed scan replaces the list and calls onChange once; ids are unique (first wins); a failing scan keeps the last list', () => {
  let disk = [{ id: 'a', sizeBytes: 1 }]
  let changes = 0
  const w = new LocalModelsWatch(() => { if (disk.length === 0) throw new Error('unreadable'); return disk }, () => { changes++ })
  assert.deepEqual(w.models, [{ id: 'a', sizeBytes: 1 }])
  assert.equal(w.refresh(), false)
  disk = [{ id: 'a', sizeBytes: 1 }, { id: 'b', sizeBytes: 2 }, { id: 'a', sizeBytes: 9 }]
  assert.equal(w.refresh(), true)
  assert.deepEqual(w.models, [{ id: 'a', sizeBytes: 1 }, { id: 'b', sizeBytes: 2 }])
  assert.equal(changes, 1)
  disk = []
  assert.equal(w.refresh(), false)
  assert.equal(w.models.length, 2)
})
