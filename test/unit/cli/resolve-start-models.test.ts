import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { resolveStartModels } from '../../../src/cli/resolve-start-models.js'
import { ModelStore } from '../../../src/models/model-store.js'
import { ModelFileNotFoundError } from '../../../src/shared/errors/pull-errors.js'

const dataDir = mkdtempSync(join(tmpdir(), 'exo-start-models-'))
after(() => { rmSync(dataDir, { recursive: true, force: true }) })

test('start --model: files and bare ids stay, a missing path is an error naming it, a pulled Hub reference is its stored file (no network)', async () => {
  const file = join(dataDir, 'here.gguf')
  writeFileSync(file, 'x')
  mkdirSync(join(dataDir, 'models'), { recursive: true })
  writeFileSync(join(dataDir, 'models', 'm-Q8_0.gguf'), 'y')
  await new ModelStore(join(dataDir, 'models')).writeMeta({ id: 'm-Q8_0', repo: 'org/m-GGUF', revision: 'main', commit: undefined, files: [{ name: 'm-Q8_0.gguf', size: 1, sha256: undefined }], pulledAt: '' })
  assert.deepEqual(await resolveStartModels([file, 'some-model-peers-hold', 'org/m-GGUF:q8_0'], dataDir), [file, 'some-model-peers-hold', join(dataDir, 'models', 'm-Q8_0.gguf')])
  for (const missing of ['missing.gguf', join(dataDir, 'nope.gguf'), './rel/model']) {
    await assert.rejects(resolveStartModels([missing], dataDir), (err: unknown) => err instanceof ModelFileNotFoundError && err.message.includes(missing))
  }
})
