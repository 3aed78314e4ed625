import { join } from 'node:path'
import { readGguf } from '../engine/gguf/gguf-reader.js'
import { ggmlTypeName } from '../engine/gguf/ggml-types.js'
import { ModelStore } from '../models/model-store.js'
import { statSync } from 'node:fs'
import { BUNDLED_MODEL_PATH, DEFAULT_MODEL_ID } from './model-registry.js'

/** One row of `exo-p2p models`: a model on this machine, described from its GGUF header. */
export interface CatalogueEntry {
  id: string
  /** `general.architecture`, or undefined when the header cannot be read */
  architecture: string | undefined
  /** the tensor type holding most bytes of the layer weights (`Q8_0`, `F32`, …) */
  quant: string | undefined
  /** all parts together */
  sizeBytes: number
  layers: number | undefined
  /** part 1 first */
  paths: string[]
  /** `hub` (pulled; `repo` says from where), `store` (copied into the models dir), `bundled` */
  source: 'hub' | 'store' | 'bundled'
  repo: string | undefined
  /** why the header could not be read */
  error?: string
}

function describe (path: string): Pick<CatalogueEntry, 'architecture' | 'quant' | 'layers' | 'error'> {
  try {
    const gguf = readGguf(path, { checkData: false })
    const arch = gguf.metadata.get('general.architecture')
    const architecture = typeof arch === 'string' ? arch : undefined
    const blocks = architecture === undefined ? undefined : gguf.metadata.get(`${architecture}.block_count`)
    const bytesByType = new Map<number, number>()
    for (const t of gguf.tensors.values()) {
      if (t.ne.length >= 2 && t.name.startsWith('blk.')) bytesByType.set(t.type, (bytesByType.get(t.type) ?? 0) + t.bytes)
    }
    const top = [...bytesByType.entries()].sort((a, b) => b[1] - a[1])[0]
    return {
      architecture,
      quant: top === undefined ? undefined : ggmlTypeName(top[0]).toUpperCase(),
      layers: typeof blocks === 'number' || typeof blocks === 'bigint' ? Number(blocks) : undefined
    }
  } catch (err) {
    return { architecture: undefined, quant: undefined, layers: undefined, error: (err as Error).message }
  }
}

/** The models under `<dataDir>/models` (pulled or copied there), then the bundled default; sorted by id within each. */
export async function listCatalogue (dataDir: string, options: { bundled?: boolean } = {}): Promise<CatalogueEntry[]> {
  const store = new ModelStore(join(dataDir, 'models'))
  const out: CatalogueEntry[] = []
  for (const m of await store.list()) {
    out.push({ id: m.id, ...describe(m.paths[0]!), sizeBytes: m.sizeBytes, paths: m.paths, source: m.meta !== undefined ? 'hub' : 'store', repo: m.meta?.repo })
  }
  if (options.bundled !== false && !out.some((m) => m.id === DEFAULT_MODEL_ID)) {
    out.push({ id: DEFAULT_MODEL_ID, ...describe(BUNDLED_MODEL_PATH), sizeBytes: statSync(BUNDLED_MODEL_PATH).size, paths: [BUNDLED_MODEL_PATH], source: 'bundled', repo: undefined })
  }
  return out
}
