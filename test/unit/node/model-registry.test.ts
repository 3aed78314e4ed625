import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { BUNDLED_MODEL_PATH, ModelRegistry } from '../../../src/node/model-registry.js'
import { UnknownModelError } from '../../../src/shared/errors/model-errors.js'

const dir = mkdtempSync(join(tmpdir(), 'exo-registry-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })
writeFileSync(join(dir, 'b-model.gguf'), 'x')
writeFileSync(join(dir, 'a-model.GGUF'), 'xy')
writeFileSync(join(dir, 'notes.txt'), 'no')
mkdirSync(join(dir, 'folder.gguf'))

test('lists the bundled model plus *.gguf files of the models dir, ids without .gguf', async () => {
  const list = await new ModelRegistry({ modelsDir: dir }).list()
  assert.deepEqual(list.map((m) => m.id), ['a-model', 'b-model', 'stories260k-f32'])
  assert.equal(list[0]!.sizeBytes, 2)
  assert.equal(list[2]!.path, BUNDLED_MODEL_PATH)
})

test('explicit paths come first and win id clashes; a missing models dir is empty', async () => {
  const r = new ModelRegistry({ modelPaths: [join(dir, 'b-model.gguf')], modelsDir: join(dir, 'missing'), bundledModelPath: null })
  assert.deepEqual((await r.list()).map((m) => m.id), ['b-model'])
})

test('an unknown id is a typed error that lists the known ids', async () => {
  const r = new ModelRegistry({ modelsDir: dir })
  await assert.rejects(r.resolve('nope'), (err: unknown) => err instanceof UnknownModelError && err.message.includes('a-model, b-model, stories260k-f32'))
  assert.equal((await r.resolve('b-model')).sizeBytes, 1)
})
