import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { BUNDLED_MODEL_PATH, ModelRegistry, modelIdOfPath } from '../../../src/node/model-registry.js'
import { findLocalModels } from '../../../src/node/local-info.js'
import type { Logger } from '../../../src/shared/log.js'
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

test('a split model is listed once, by its first part, under the name without -00001-of-0000N, sized over all parts', async () => {
  const sdir = join(dir, 'split')
  mkdirSync(sdir)
  writeFileSync(join(sdir, 'Big-Q4_K_M-00001-of-00003.gguf'), 'a')
  writeFileSync(join(sdir, 'Big-Q4_K_M-00002-of-00003.gguf'), 'bb')
  writeFileSync(join(sdir, 'Big-Q4_K_M-00003-of-00003.gguf'), 'ccc')
  writeFileSync(join(sdir, 'Orphan-00002-of-00002.gguf'), 'd')
  const r = new ModelRegistry({ modelsDir: sdir, bundledModelPath: null })
  const list = await r.list()
  assert.deepEqual(list.map((m) => [m.id, m.sizeBytes]), [['Big-Q4_K_M', 6]])
  assert.equal(list[0]!.path, join(sdir, 'Big-Q4_K_M-00001-of-00003.gguf'))
  assert.equal(modelIdOfPath('/x/Big-Q4_K_M-00001-of-00003.gguf'), 'Big-Q4_K_M')
  // named explicitly (run --model PART1): same id and size
  const explicit = await new ModelRegistry({ modelPaths: [join(sdir, 'Big-Q4_K_M-00001-of-00003.gguf')], bundledModelPath: null }).list()
  assert.deepEqual(explicit.map((m) => [m.id, m.sizeBytes]), [['Big-Q4_K_M', 6]])
})

test('findLocalModels: an id resolves to <dataDir>/models/<id>-00001-of-N.gguf; sizes count all parts', () => {
  const data = join(dir, 'data')
  mkdirSync(join(data, 'models'), { recursive: true })
  writeFileSync(join(data, 'models', 'M-00001-of-00002.gguf'), 'aa')
  writeFileSync(join(data, 'models', 'M-00002-of-00002.gguf'), 'bbb')
  const warned: unknown[] = []
  const log = { warn: (o: unknown) => { warned.push(o) } } as unknown as Logger
  assert.deepEqual(findLocalModels(['M', join(data, 'models', 'M-00001-of-00002.gguf'), 'absent'], data, log), [{ id: 'M', sizeBytes: 5 }, { id: 'M', sizeBytes: 5 }])
  assert.equal(warned.length, 1)
})
