import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatModelsTable, holdersById, modelsJson } from '../../../src/cli/models-table.js'
import type { CatalogueEntry } from '../../../src/node/model-catalogue.js'
import type { ClusterStateJson } from '../../../src/shared/cluster-state.js'

const entries: CatalogueEntry[] = [
  { id: 'big-Q8_0', architecture: 'llama', quant: 'Q8_0', sizeBytes: 3 * 2 ** 30, layers: 32, paths: ['/m/big-Q8_0-00001-of-00002.gguf', '/m/big-Q8_0-00002-of-00002.gguf'], source: 'hub', repo: 'org/big-GGUF' },
  { id: 'stories260k-f32', architecture: 'llama', quant: 'F32', sizeBytes: 1185376, layers: 5, paths: ['/b/stories260k-f32.gguf'], source: 'bundled', repo: undefined }
]
const member = (name: string, models: string[]): ClusterStateJson['members'][number] => ({ name, models: models.map((id) => ({ id, sizeBytes: 1 })) }) as unknown as ClusterStateJson['members'][number]

test('holders come from every member\'s announced models; models only the mesh has get a row', () => {
  const holders = holdersById({ members: [member('a', ['big-Q8_0', 'stories260k-f32']), member('b', ['stories260k-f32', 'qwen-remote'])] } as unknown as ClusterStateJson)
  const lines = formatModelsTable(entries, holders).split('\n')
  assert.match(lines[0]!, /^ID\s+ARCH\s+QUANT\s+SIZE\s+LAYERS\s+NODES\s+SOURCE$/)
  assert.match(lines[1]!, /^big-Q8_0\s+llama\s+Q8_0\s+3\.0 GiB\s+32\s+a\s+org\/big-GGUF$/)
  assert.match(lines[2]!, /^stories260k-f32\s+llama\s+F32\s+1\.1 MiB\s+5\s+a,b\s+bundled$/)
  assert.match(lines[3]!, /^qwen-remote\s+b\s+mesh$/)
  assert.deepEqual(modelsJson(entries, undefined).map((r) => r.nodes), [null, null], 'no node to ask: null, not []')
  assert.match(formatModelsTable(entries, undefined), /\(no node\)/)
})
