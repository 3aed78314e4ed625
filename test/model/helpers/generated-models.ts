import { createHash } from 'node:crypto'
import { existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { DEFAULTS, makeModel } from '../../../scripts/make-model.js'
import type { MakeModelOptions, ModelType } from '../../../scripts/make-model.js'

/** Bump when scripts/make-model.ts or scripts/model-gen/* write different bytes for the same options. */
const GENERATOR_VERSION = 2

/** A random-weight GGUF of any generated architecture (scripts/make-model.ts), cached under os.tmpdir() across runs. */
export function generatedModel (type: ModelType, shape: Partial<Omit<MakeModelOptions, 'out' | 'type'>> = {}): string {
  const o = { ...DEFAULTS, ...shape, type }
  const dir = join(tmpdir(), 'exo-p2p-test-models')
  mkdirSync(dir, { recursive: true })
  const opts = Object.entries(o.archOptions ?? {}).sort(([a], [b]) => a < b ? -1 : 1).map(([k, v]) => `-${k}=${String(v)}`).join('')
  const mix = (o.tensorTypes ?? []).map((r) => `-${r.pattern.replace(/[^\w.]+/g, '_')}=${r.type}`).join('')
  const vocab = o.vocabFrom === DEFAULTS.vocabFrom ? '' : `-v${basename(o.vocabFrom, '.gguf')}`
  const template = o.chatTemplate === undefined ? '' : `-ct${createHash('sha256').update(o.chatTemplate).digest('hex').slice(0, 12)}`
  const out = join(dir, `g${GENERATOR_VERSION}-${o.arch ?? 'llama'}-${o.layers}x${o.embd}h${o.heads}kv${o.kvHeads}hd${o.headDim ?? 0}ff${o.ff}${o.ropeFreqs === true ? '-rf' : ''}${o.tied === true ? '-tied' : ''}${opts}${mix}${vocab}${template}-${type}-s${o.seed}-c${o.context}.gguf`)
  if (!existsSync(out)) makeModel({ ...o, out })
  return out
}
