import { lstat, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { StoredModelNotFoundError } from '../shared/errors/pull-errors.js'
import { splitGgufPaths } from '../shared/split-gguf-name.js'
import { ggufNameInfo, modelIdOfFileName } from './gguf-split-name.js'

/**
 * Where a pulled model came from (`<models>/.meta/<id>.json`): what `models` shows and what a peer that fetches
 * from this node can check against (sha256 as the Hub published it).
 */
export interface StoredModelMeta {
  id: string
  repo: string
  revision: string
  commit: string | undefined
  files: Array<{ name: string, size: number, sha256: string | undefined, hfCachePath?: string }>
  pulledAt: string
}

export interface StoredModel {
  id: string
  /** absolute paths, part 1 first */
  paths: string[]
  sizeBytes: number
  meta: StoredModelMeta | undefined
}

/**
 * The model store: `<data dir>/models/`. A model is `<id>.gguf`, or the parts `<id>-0000k-of-0000N.gguf` of a
 * split model (their id is the name without the part suffix). A file linked from the Hugging Face cache is a
 * symlink. Downloads in progress live in `.partial/`, provenance in `.meta/`; neither is ever a model.
 */
export class ModelStore {
  readonly partialDir: string
  readonly metaDir: string

  constructor (readonly dir: string) {
    this.partialDir = join(dir, '.partial')
    this.metaDir = join(dir, '.meta')
  }

  async ensureDirs (): Promise<void> {
    await mkdir(this.partialDir, { recursive: true })
    await mkdir(this.metaDir, { recursive: true })
  }

  finalPath (name: string): string { return join(this.dir, name) }
  partialPath (name: string): string { return join(this.partialDir, `${name}.partial`) }
  private metaPath (id: string): string { return join(this.metaDir, `${id}.json`) }

  async readMeta (id: string): Promise<StoredModelMeta | undefined> {
    try { return JSON.parse(await readFile(this.metaPath(id), 'utf8')) as StoredModelMeta } catch { return undefined }
  }

  async writeMeta (meta: StoredModelMeta): Promise<void> {
    await this.ensureDirs()
    const tmp = `${this.metaPath(meta.id)}.tmp`
    await writeFile(tmp, JSON.stringify(meta, null, 2))
    await rename(tmp, this.metaPath(meta.id))
  }

  /** Every complete model in the store (a split model only when all its parts are there), sorted by id. */
  async list (): Promise<StoredModel[]> {
    const names = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return [] as string[]; throw err })
    const present = new Set(names)
    const out: StoredModel[] = []
    for (const name of names.filter((n) => n.endsWith('.gguf')).sort()) {
      const info = ggufNameInfo(name)
      if (info === undefined || (info.count > 1 && info.index !== 1)) continue
      const parts = info.count > 1 ? splitGgufPaths(info.prefix, info.count) : [name]
      if (!parts.every((p) => present.has(p))) continue
      let sizeBytes = 0
      const sizes = await Promise.all(parts.map(async (p) => await stat(join(this.dir, p)).catch(() => undefined)))
      if (sizes.some((s) => s?.isFile() !== true)) continue
      for (const s of sizes) sizeBytes += s!.size
      const id = modelIdOfFileName(name)
      out.push({ id, paths: parts.map((p) => join(this.dir, p)), sizeBytes, meta: await this.readMeta(id) })
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  async find (id: string): Promise<StoredModel | undefined> {
    return (await this.list()).find((m) => m.id === id)
  }

  /**
   * Removes a model: its files (a link into the HF cache is unlinked, the cache is left alone), its meta data and
   * any partial download of it. `StoredModelNotFoundError` (listing the stored ids) when the store lacks it.
   */
  async remove (id: string): Promise<StoredModel> {
    const all = await this.list()
    const hit = all.find((m) => m.id === id)
    if (hit === undefined) throw new StoredModelNotFoundError(id, all.map((m) => m.id))
    for (const p of hit.paths) {
      if ((await lstat(p).catch(() => undefined)) !== undefined) await rm(p, { force: true })
    }
    await rm(this.metaPath(id), { force: true })
    for (const p of hit.paths) {
      const partial = this.partialPath(p.slice(this.dir.length + 1))
      await rm(partial, { force: true })
      await rm(`${partial}.json`, { force: true })
    }
    return hit
  }
}
