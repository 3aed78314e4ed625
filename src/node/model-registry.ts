import { readdir, stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { UnknownModelError } from '../shared/errors/model-errors.js'
import { asModelId } from '../shared/ids.js'
import { ggufModelName, parseSplitGgufName, splitGgufPaths } from '../shared/split-gguf-name.js'
import type { ModelId } from '../shared/ids.js'

/** The tiny model shipped with the project (models/stories260k-f32.gguf), the out-of-the-box default. */
export const BUNDLED_MODEL_PATH = fileURLToPath(new URL('../../models/stories260k-f32.gguf', import.meta.url))
export const DEFAULT_MODEL_ID = asModelId('stories260k-f32')

export interface ModelEntry {
  /** file name without `.gguf` (for a split model also without `-00001-of-0000N`) */
  id: ModelId
  /** absolute path of the GGUF file (for a split model: its first part) */
  path: string
  /** bytes on disk (for a split model: all parts present) */
  sizeBytes: number
}

export interface ModelRegistryOptions {
  /** explicit model files (e.g. `run --model PATH`); listed first, win id clashes */
  modelPaths?: readonly string[]
  /** every `*.gguf` directly in this folder is a model (a split model by its first part; other parts are not listed) */
  modelsDir?: string
  /** the bundled default; `null` leaves it out. Default BUNDLED_MODEL_PATH */
  bundledModelPath?: string | null
}

/** Model id of a GGUF path: its file name without `.gguf` and, for a split part, without `-NNNNN-of-MMMMM`. */
export function modelIdOfPath (path: string): ModelId {
  return asModelId(ggufModelName(basename(path)))
}

/** A split part other than the first: not a model of its own (the first part names the model). */
export function isLaterSplitPart (path: string): boolean {
  const split = parseSplitGgufName(basename(path))
  return split !== undefined && split.no > 0
}

/** The files of the model at `path`: itself, or every part of the split model whose first part it is. */
export function modelFiles (path: string): string[] {
  const split = parseSplitGgufName(path)
  return split === undefined || split.no !== 0 ? [path] : splitGgufPaths(split.prefix, split.count)
}

/**
 * Which models this node can run, found on disk at every call (a model pulled meanwhile shows up).
 * Files that vanish or are not regular files are skipped.
 */
export class ModelRegistry {
  constructor (private readonly options: ModelRegistryOptions = {}) {}

  async list (): Promise<ModelEntry[]> {
    const paths: string[] = [...(this.options.modelPaths ?? [])].map((p) => resolve(p))
    const dir = this.options.modelsDir
    if (dir !== undefined) {
      const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return [] as string[]; throw err })
      paths.push(...names.filter((n) => /\.gguf$/i.test(n) && !isLaterSplitPart(n)).sort().map((n) => resolve(join(dir, n))))
    }
    const bundled = this.options.bundledModelPath === undefined ? BUNDLED_MODEL_PATH : this.options.bundledModelPath
    if (bundled !== null) paths.push(resolve(bundled))
    const seen = new Set<string>()
    const out: ModelEntry[] = []
    for (const path of paths) {
      const id = modelIdOfPath(path)
      if (seen.has(id)) continue
      const st = await stat(path).catch(() => undefined)
      if (st?.isFile() !== true) continue
      seen.add(id)
      // a split model: the parts present (a missing part is reported by name when the model loads)
      let sizeBytes = st.size
      for (const part of modelFiles(path).slice(1)) sizeBytes += (await stat(part).catch(() => undefined))?.size ?? 0
      out.push({ id, path, sizeBytes })
    }
    return out
  }

  /** The model with this id; `UnknownModelError` (listing the known ids) otherwise. */
  async resolve (id: string): Promise<ModelEntry> {
    const all = await this.list()
    const hit = all.find((m) => m.id === id)
    if (hit === undefined) throw new UnknownModelError(id, all.map((m) => m.id))
    return hit
  }
}
