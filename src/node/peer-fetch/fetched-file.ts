import type { Stream } from '@libp2p/interface'
import { AbortedError } from '../../shared/errors/exo-error.js'
import { NoHolderError } from '../../shared/errors/model-errors.js'
import type { Logger } from '../../shared/log.js'
import { chooseManifest, chunkCount, chunksCovering, requestManifest } from '../../protocols/weights/index.js'
import type { WeightsManifest } from '../../protocols/weights/index.js'
import { ChunkFetcher } from './chunk-fetcher.js'
import type { ChunkFetcherInit } from './chunk-fetcher.js'
import { PartialCopy } from './partial-copy.js'

export interface FetchedFileInit {
  /**
   * What requests name (protocols/weights.md "File id"): the model id for a single-file model, the part's
   * file name without `.gguf` for a part of a split model. The copy is `<dir>/<fileId>.gguf`.
   */
  fileId: string
  /** `<data dir>/models/.partial` */
  dir: string
  holders: () => string[]
  dial: (peerId: string, signal: AbortSignal) => Promise<Stream>
  /** the bulk path to holders (ChunkFetcherInit) */
  bulkHost?: ChunkFetcherInit['bulkHost']
  bulkAddress?: ChunkFetcherInit['bulkAddress']
  log: Logger
  maxBytesPerSec?: number
  pace?: (bytes: number, signal: AbortSignal) => Promise<void>
}

const MANIFEST_WAIT_MS = 600_000

/**
 * One file fetched from peers (a whole model, or one part of a split model): its sparse partial copy and
 * the chunk fetcher that fills it. `open` waits for holders, chooses the manifest (protocols/weights.md
 * "Which manifest a fetcher trusts"), opens or resumes the copy and fetches the header's chunks.
 */
export class FetchedFile {
  private constructor (readonly copy: PartialCopy, readonly fetcher: ChunkFetcher) {}

  get path (): string { return this.copy.path }
  get manifest (): WeightsManifest { return this.copy.manifest }
  get complete (): boolean { return this.copy.complete }

  static async open (init: FetchedFileInit, signal: AbortSignal): Promise<FetchedFile> {
    let holders: string[] = []
    while ((holders = init.holders()).length === 0) {
      if (signal.aborted) throw new AbortedError('peer fetch aborted')
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    const byHolder = new Map<string, WeightsManifest>()
    await Promise.allSettled(holders.map(async (h) => {
      const s = AbortSignal.any([signal, AbortSignal.timeout(MANIFEST_WAIT_MS)])
      byHolder.set(h, await requestManifest(await init.dial(h, s), init.fileId, { signal: s }))
    }))
    if (signal.aborted) throw new AbortedError('peer fetch aborted')
    const chosen = chooseManifest(byHolder)
    if (chosen === undefined) throw new NoHolderError(`none of ${holders.length} holders of ${init.fileId} sent a manifest`)
    const m = chosen.manifest
    const copy = await PartialCopy.open(init.dir, init.fileId, m)
    init.log.info({ file: init.fileId, fileBytes: m.fileBytes, headerBytes: m.headerBytes, chunks: chunkCount(m), holders: chosen.holders.length, resumedChunks: copy.verifiedChunks }, 'peer fetch: manifest chosen')
    const wanted = new Set(chosen.holders)
    const fetcher = new ChunkFetcher({
      modelId: init.fileId,
      copy,
      // holders that sent another manifest stay out; new holders are checked by the fetcher
      holders: () => init.holders().filter((h) => wanted.has(h) || !byHolder.has(h)),
      dial: init.dial,
      log: init.log,
      ...(init.maxBytesPerSec !== undefined ? { maxBytesPerSec: init.maxBytesPerSec } : {}),
      ...(init.pace !== undefined ? { pace: init.pace } : {}),
      ...(init.bulkHost !== undefined ? { bulkHost: init.bulkHost } : {}),
      ...(init.bulkAddress !== undefined ? { bulkAddress: init.bulkAddress } : {})
    })
    const file = new FetchedFile(copy, fetcher)
    await fetcher.ensure(file.headerChunks(), signal)
    return file
  }

  headerChunks (): number[] {
    return chunksCovering(this.manifest, [{ offset: 0, bytes: this.manifest.headerBytes }])
  }

  allChunks (): number[] {
    return Array.from({ length: chunkCount(this.manifest) }, (_, i) => i)
  }

  /** Renames the copy to the name of another file id (part 1 of a split model). */
  async renameTo (fileId: string): Promise<void> {
    await this.copy.moveTo(fileId)
    this.fetcher.rename(fileId)
  }

  /** Stops fetching; resolves once the copy is closed (its state file written). */
  async stop (): Promise<void> {
    this.fetcher.stop()
    await this.copy.close()
  }
}
