import { readdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { readGguf } from '../../engine/gguf/gguf-reader.js'
import { shardFileRanges } from '../../engine/index.js'
import type { LayerRange } from '../../engine/index.js'
import { AbortedError } from '../../shared/errors/exo-error.js'
import { NoHolderError } from '../../shared/errors/model-errors.js'
import { parseSplitGgufName, splitGgufPaths } from '../../shared/split-gguf-name.js'
import { chunksCovering } from '../../protocols/weights/index.js'
import type { WeightsManifest } from '../../protocols/weights/index.js'
import type { ChunkFetcher } from './chunk-fetcher.js'
import { FetchedFile } from './fetched-file.js'
import type { FetchedFileInit } from './fetched-file.js'

/** What every file of the model is fetched with (FetchedFileInit less the file id), plus: */
export interface PeerModelFetchInit extends Omit<FetchedFileInit, 'fileId'> {
  modelId: string
  /** also fetch every other chunk, after the stages' ones (`--fetch-whole`), so the copy is promoted. Default false */
  completeCopy?: boolean
  /** the copy was verified whole and now is the model at `path` (`<data dir>/models/…`, part 1 of a split model) */
  onPromoted?: (path: string) => void
}

/** What a partial copy holds, for the announcement (protocols/membership.md `partials`) and /cluster/state. */
export interface FetchProgress {
  id: string
  sizeBytes: number
  /** bytes verified on disk */
  verifiedBytes: number
  /** bytes of the headers and every range asked for so far */
  targetBytes: number
  /** layer ranges [start, end) whose tensors are all verified */
  layers: Array<[number, number]>
}

/** Chunks per part of the model's files (index = part). */
export type PartChunks = number[][]

/**
 * Peer fetch of one model this node lacks (protocols/weights.md): waits for holders, takes their
 * manifests, opens (or resumes) the sparse partial copy of each file — every part of a split model —
 * and fetches their headers; then `ensureRange` fetches exactly the chunks a stage's tensors occupy.
 * Every chunk is verified before it is written. Once every chunk of every file is verified, the
 * whole-file SHA-256s are checked and the files move into the model store (`onPromoted`).
 */
export class PeerModelFetch {
  private parts: FetchedFile[] = []
  private readonly targets: Array<Set<number>> = []
  private readonly controller = new AbortController()
  /** per layer, the chunks of stage [l, l + 1) (computed once from the headers) */
  private layerChunks: PartChunks[] | undefined
  private promotedPath: string | undefined
  private promoting: Promise<void> | undefined
  /** chunksFor's answers: each parses the tensor table of the header (tens of ms) */
  private readonly chunksByRange = new Map<string, PartChunks>()

  constructor (private readonly init: PeerModelFetchInit) {}

  /** The file to load: part 1 of the partial copy, or the promoted model. */
  get path (): string | undefined { return this.promotedPath ?? this.parts[0]?.path }
  /** undefined until promoted */
  get promoted (): string | undefined { return this.promotedPath }
  get manifest (): WeightsManifest | undefined { return this.parts[0]?.manifest }
  get manifests (): WeightsManifest[] { return this.parts.map((p) => p.manifest) }
  get chunkFetcher (): ChunkFetcher | undefined { return this.parts[0]?.fetcher }

  /** Waits for holders, chooses the manifests, fetches every file's header; resolves with part 1's path. */
  async prepareHeader (signal: AbortSignal): Promise<string> {
    const all = AbortSignal.any([signal, this.controller.signal])
    const { modelId: _modelId, completeCopy: _completeCopy, onPromoted: _onPromoted, ...common } = this.init
    const first = await FetchedFile.open({ ...common, fileId: await this.firstFileId() }, all)
    this.parts = [first]
    const count = splitCount(first.path)
    if (count > 1) {
      // a split model: the other parts are files of their own, each with its manifest (protocols/weights.md "File id")
      const ids = splitGgufPaths(this.init.modelId, count).map((n) => n.slice(0, -'.gguf'.length))
      if (first.copy.modelId !== ids[0]) await first.renameTo(ids[0]!)
      const rest = await Promise.allSettled(ids.slice(1).map(async (fileId) => await FetchedFile.open({ ...common, fileId }, all)))
      for (const r of rest) if (r.status === 'fulfilled') this.parts.push(r.value)
      const failed = rest.find((r) => r.status === 'rejected')
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
    }
    for (const [i, p] of this.parts.entries()) this.targets[i] = new Set(p.headerChunks())
    if (all.aborted) throw new AbortedError('peer fetch aborted')
    if (this.init.completeCopy === true) void this.completeInBackground(all)
    await this.promoteIfComplete()
    return this.path!
  }

  /** The name part 1's copy has: a split part's name when an earlier run learnt it from the header. */
  private async firstFileId (): Promise<string> {
    const names = await readdir(this.init.dir).catch(() => [] as string[])
    const part1 = names.map((n) => n.replace(/\.fetch\.json$/, '')).find((n) => { const s = parseSplitGgufName(n); return s?.prefix === this.init.modelId && s.no === 0 })
    return part1 === undefined ? this.init.modelId : part1.slice(0, -'.gguf'.length)
  }

  /** Chunks, per part, that the tensors of stage `range` occupy (from the verified headers; parsed once per range). */
  chunksFor (range: LayerRange): PartChunks {
    const first = this.parts[0]
    if (first === undefined) return []
    const key = `${this.parts.length}:${range.start}-${range.end}`
    let hit = this.chunksByRange.get(key)
    if (hit === undefined) { hit = this.computeChunks(range); this.chunksByRange.set(key, hit) }
    return hit
  }

  private computeChunks (range: LayerRange): PartChunks {
    const first = this.parts[0]!
    const byPath = new Map(this.parts.map((p, i) => [resolve(p.path), i]))
    const ranges: Array<Array<{ offset: number, bytes: number }>> = this.parts.map(() => [])
    for (const r of shardFileRanges(first.path, range)) {
      const i = byPath.get(resolve(r.path))
      if (i === undefined) throw new NoHolderError(`tensor ${r.name} of ${this.init.modelId} is in ${r.path}, which is not being fetched`)
      ranges[i]!.push({ offset: r.offset, bytes: r.bytes })
    }
    return this.parts.map((p, i) => chunksCovering(p.manifest, ranges[i]!))
  }

  /** Fetches every chunk stage `range` needs; resolves when all are verified on disk. */
  async ensureRange (range: LayerRange, signal: AbortSignal): Promise<void> {
    if (this.promotedPath !== undefined) return
    if (this.parts.length === 0) throw new NoHolderError(`the header of ${this.init.modelId} is not fetched yet`)
    const chunks = this.chunksFor(range)
    const t0 = performance.now()
    const all = AbortSignal.any([signal, this.controller.signal])
    await Promise.all(this.parts.map(async (p, i) => {
      for (const c of chunks[i]!) this.targets[i]!.add(c)
      await p.fetcher.ensure(chunks[i]!, all)
    }))
    this.init.log.info({ model: this.init.modelId, start: range.start, end: range.end, chunks: chunks.reduce((a, c) => a + c.length, 0), ms: Math.round(performance.now() - t0), fromPeers: fromPeers(this.parts), ...rangesBy(this.parts) }, 'peer fetch: layers verified')
    await this.promoteIfComplete()
  }

  /** `--fetch-whole`: every other chunk, at the lowest priority (after any stage's), then promotion. */
  private async completeInBackground (signal: AbortSignal): Promise<void> {
    try {
      await Promise.all(this.parts.map(async (p, i) => {
        for (const c of p.allChunks()) this.targets[i]!.add(c)
        await p.fetcher.ensure(p.allChunks(), signal, { background: true })
      }))
      await this.promoteIfComplete()
    } catch (err) {
      if (!signal.aborted) this.init.log.warn({ model: this.init.modelId, err: (err as Error).message }, 'peer fetch: completing the copy failed; the node keeps its stages')
    }
  }

  /**
   * Every chunk of every file verified: checks each whole-file SHA-256 and links the files into the model
   * store (later parts first, part 1 — which names the model — last), then removes the partial copy.
   */
  private async promoteIfComplete (): Promise<void> {
    if (this.promotedPath !== undefined || this.parts.length === 0 || !this.parts.every((p) => p.complete)) return
    this.promoting ??= (async () => {
      const modelsDir = dirname(this.init.dir)
      const dest = (p: FetchedFile): string => join(modelsDir, `${p.copy.modelId}.gguf`)
      try {
        for (const p of [...this.parts.slice(1), this.parts[0]!]) await p.copy.finalize(dest(p))
      } catch (err) {
        this.init.log.error({ model: this.init.modelId, err: (err as Error).message }, 'peer fetch: the complete copy failed its whole-file check; it stays a partial copy')
        return
      }
      this.promotedPath = dest(this.parts[0]!)
      this.init.log.info({ model: this.init.modelId, path: this.promotedPath }, 'peer fetch: every chunk verified, whole-file sha256 checked: the model is in the store')
      this.init.onPromoted?.(this.promotedPath)
      for (const p of this.parts) { p.fetcher.stop(); await p.copy.remove() }
    })()
    await this.promoting
  }

  progress (nLayers: number | undefined): FetchProgress | undefined {
    if (this.parts.length === 0 || this.promotedPath !== undefined) return undefined
    const has = (i: number, c: number): boolean => this.parts[i]!.copy.has(c)
    let target = 0
    for (const [i, p] of this.parts.entries()) {
      const m = p.manifest
      for (const c of this.targets[i] ?? []) target += Math.min(m.chunkBytes, m.fileBytes - c * m.chunkBytes)
    }
    const layers: Array<[number, number]> = []
    if (nLayers !== undefined) {
      this.layerChunks ??= Array.from({ length: nLayers }, (_, l) => this.safeChunks({ start: l, end: l + 1 }))
      for (let l = 0; l < nLayers; l++) {
        // layer l is covered when stage [l, l + 1) could load (with the embedding / output at the ends)
        if (!this.layerChunks[l]!.every((cs, i) => cs.every((c) => has(i, c)))) continue
        const last = layers[layers.length - 1]
        if (last !== undefined && last[1] === l) last[1] = l + 1
        else layers.push([l, l + 1])
      }
    }
    const sum = (f: (p: FetchedFile) => number): number => this.parts.reduce((a, p) => a + f(p), 0)
    const verified = sum((p) => p.copy.verifiedBytes)
    return { id: this.init.modelId, sizeBytes: sum((p) => p.manifest.fileBytes), verifiedBytes: verified, targetBytes: Math.max(target, verified), layers: layers.slice(0, 64) }
  }

  private safeChunks (range: LayerRange): PartChunks {
    try { return this.chunksFor(range) } catch { return [[-1]] }
  }

  /** Stops fetching; resolves once every copy is closed (nothing writes to `dir` afterwards). */
  async stop (): Promise<void> {
    this.controller.abort(new AbortedError('peer fetch stopped'))
    await Promise.all(this.parts.map(async (p) => { await p.stop() }))
  }
}

/** `split.count` of the file at `path` (0 / 1 / absent: a single file). */
function splitCount (path: string): number {
  const v = readGguf(path, { checkData: false }).metadata.get('split.count')
  const n = typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 1
  return Number.isInteger(n) && n > 1 ? n : 1
}

function fromPeers (parts: readonly FetchedFile[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of parts) for (const [k, v] of p.fetcher.bytesFrom) out[k.slice(-8)] = (out[k.slice(-8)] ?? 0) + v
  return out
}

/** Ranges fetched over the bulk path and over the libp2p stream (protocols/weights.md "Bulk path (1.1.0)"), all parts. */
function rangesBy (parts: readonly FetchedFile[]): { viaBulk: number, viaStream: number } {
  return { viaBulk: parts.reduce((a, p) => a + p.fetcher.ranges.bulk, 0), viaStream: parts.reduce((a, p) => a + p.fetcher.ranges.stream, 0) }
}
