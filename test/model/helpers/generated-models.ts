import { existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULTS, makeModel } from '../../../scripts/make-model.js'
import type { MakeModelOptions, ModelType } from '../../../scripts/make-model.js'

/** A random-weight llama GGUF (scripts/make-model.ts), cached under os.tmpdir() across runs. */
export function generatedModel (type: ModelType, shape: Partial<Omit<MakeModelOptions, 'out' | 'type'>> = {}): string {
  const o = { ...DEFAULTS, ...shape, type }
  const dir = join(tmpdir(), 'exo-p2p-test-models')
  mkdirSync(dir, { recursive: true })
  const out = join(dir, `${o.arch ?? 'llama'}-${o.layers}x${o.embd}h${o.heads}kv${o.kvHeads}hd${o.headDim ?? 0}ff${o.ff}${o.ropeFreqs === true ? '-rf' : ''}${o.tied === true ? '-tied' : ''}-${type}-s${o.seed}.gguf`)
  if (!existsSync(out)) makeModel({ ...o, out })
  return out
}
