import type { Stream } from '@libp2p/interface'
import { shardFileRanges } from '../../engine/index.js'
import type { LayerRange } from '../../engine/index.js'
import { AbortedError } from '../../shared/errors/exo-error.js'
import { NoHolderError } from '../../shared/errors/model-errors.js'
import type { Logger } from '../../shared/log.js'
import { chooseManifest, chunkCount, chunksCovering, requestManifest } from '../../protocols/weights/index.js'
import type { WeightsManifest } from '../../protocols/weights/index.js'
import { ChunkFetcher } from './chunk-fetcher.js'
import { PartialCopy } from './partial-copy.js'

export interface PeerModelFetchInit {
  modelId: string
  /** `<data dir>/models/.partial` */
  dir: string
  holders: () => string[]
  dial: (peerId: string, signal: AbortSignal) => Promise<Stream>
  log: Logger
  maxBytesPerSec?: number
  /** yield to activations after each chunk (busyPacer) */
  pace?: (bytes: number, signal: AbortSignal) => Promise<void>
}

/** What a partial copy holds, for the announcement (protocols/membership.md `partials`) and /cluster/state. */
export interface FetchProgress {
  id: string
  sizeBytes: number
  /** bytes verified on disk */
  verifiedBytes: number
  /** bytes of the header and every range asked for so far */
  targetBytes: number
  /** layer ranges [start, end) whose tensors are all verified */
  layers: Array<[number, number]>
}

const MANIFEST_WAIT_MS = 600_000

/**
 * Peer fetch of one model this node lacks (protocols/weights.md): waits for holders, takes their
 * manifests, opens (or resumes) the sparse partial copy and fetches the header; then `ensureRange`
 * fetches exactly the chunks a stage's tensors occupy. Every chunk is verified before it is written.
 */
export class PeerModelFetch {
  private copy: PartialCopy | undefined
  private fetcher: ChunkFetcher | undefined
  private readonly targets = new Set<number>()
  private readonly controller = new AbortController()
  /** per layer, the chunks of stage [l, l + 1) (computed once from the header) */
  private layerChunks: number[][] | undefined

  constructor (private readonly init: PeerModelFetchInit) {}

  get path (): string | undefined { return this.copy?.path }
  get manifest (): WeightsManifest | undefined { return this.copy?.manifest }
  get chunkFetcher (): ChunkFetcher | undefined { return this.fetcher }

  /** Waits for holders, chooses the manifest, fetches the header; resolves with the sparse file's path. */
  async prepareHeader (signal: AbortSignal): Promise<string> {
    const all = AbortSignal.any([signal, this.controller.signal])
    let holders: string[] = []
    while ((holders = this.init.holders()).length === 0) {
      if (all.aborted) throw new AbortedError('peer fetch aborted')
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    const byHolder = new Map<string, WeightsManifest>()
    await Promise.allSettled(holders.map(async (h) => {
      const s = AbortSignal.any([all, AbortSignal.timeout(MANIFEST_WAIT_MS)])
      byHolder.set(h, await requestManifest(await this.init.dial(h, s), this.init.modelId, { signal: s }))
    }))
    const chosen = chooseManifest(byHolder)
    if (chosen === undefined) throw new NoHolderError(`none of ${holders.length} holders of ${this.init.modelId} sent a manifest`)
    const m = chosen.manifest
    this.copy = await PartialCopy.open(this.init.dir, this.init.modelId, m)
    this.init.log.info({ model: this.init.modelId, fileBytes: m.fileBytes, headerBytes: m.headerBytes, chunks: chunkCount(m), holders: chosen.holders.length, resumedChunks: this.copy.verifiedChunks }, 'peer fetch: manifest chosen')
    const wanted = new Set(chosen.holders)
    this.fetcher = new ChunkFetcher({
      modelId: this.init.modelId,
      copy: this.copy,
      // holders that sent another manifest stay out; new holders are checked by the fetcher
      holders: () => this.init.holders().filter((h) => wanted.has(h) || !byHolder.has(h)),
      dial: this.init.dial,
      log: this.init.log,
      ...(this.init.maxBytesPerSec !== undefined ? { maxBytesPerSec: this.init.maxBytesPerSec } : {}),
      ...(this.init.pace !== undefined ? { pace: this.init.pace } : {})
    })
    const header = chunksCovering(m, [{ offset: 0, bytes: m.headerBytes }])
    for (const c of header) this.targets.add(c)
    await this.fetcher.ensure(header, all)
    return this.copy.path
  }

  /** Chunks the tensors of stage `range` occupy (from the verified header). */
  chunksFor (range: LayerRange): number[] {
    if (this.copy === undefined) return []
    return chunksCovering(this.copy.manifest, shardFileRanges(this.copy.path, range).map((r) => ({ offset: r.offset, bytes: r.bytes })))
  }

  /** Fetches every chunk stage `range` needs; resolves when all are verified on disk. */
  async ensureRange (range: LayerRange, signal: AbortSignal): Promise<void> {
    if (this.fetcher === undefined) throw new NoHolderError(`the header of ${this.init.modelId} is not fetched yet`)
    const chunks = this.chunksFor(range)
    for (const c of chunks) this.targets.add(c)
    const t0 = performance.now()
    await this.fetcher.ensure(chunks, AbortSignal.any([signal, this.controller.signal]))
    this.init.log.info({ model: this.init.modelId, start: range.start, end: range.end, chunks: chunks.length, ms: Math.round(performance.now() - t0), fromPeers: Object.fromEntries([...this.fetcher.bytesFrom].map(([k, v]) => [k.slice(-8), v])) }, 'peer fetch: layers verified')
  }

  progress (nLayers: number | undefined): FetchProgress | undefined {
    const copy = this.copy
    if (copy === undefined) return undefined
    let target = 0
    for (const c of this.targets) target += Math.min(copy.manifest.chunkBytes, copy.manifest.fileBytes - c * copy.manifest.chunkBytes)
    const layers: Array<[number, number]> = []
    if (nLayers !== undefined) {
      this.layerChunks ??= Array.from({ length: nLayers }, (_, l) => this.safeChunks({ start: l, end: l + 1 }))
      for (let l = 0; l < nLayers; l++) {
        // layer l is covered when stage [l, l + 1) could load (with the embedding / output at the ends)
        const ok = this.layerChunks[l]!.every((c) => copy.has(c))
        if (!ok) continue
        const last = layers[layers.length - 1]
        if (last !== undefined && last[1] === l) last[1] = l + 1
        else layers.push([l, l + 1])
      }
    }
    return { id: this.init.modelId, sizeBytes: copy.manifest.fileBytes, verifiedBytes: copy.verifiedBytes, targetBytes: Math.max(target, copy.verifiedBytes), layers: layers.slice(0, 64) }
  }

  private safeChunks (range: LayerRange): number[] {
    try { return this.chunksFor(range) } catch { return [-1] }
  }

  stop (): void {
    this.controller.abort(new AbortedError('peer fetch stopped'))
    this.fetcher?.stop()
    void this.copy?.close()
  }
}
