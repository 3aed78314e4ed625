import type { Stream } from '@libp2p/interface'
import { AbortedError } from '../../shared/errors/exo-error.js'
import { NoHolderError } from '../../shared/errors/model-errors.js'
import { BulkPathError, ChunkVerificationError, ProtocolDecodeError, WeightsErrorCode, WeightsRequestError } from '../../shared/errors/protocol-errors.js'
import type { Logger } from '../../shared/log.js'
import { MAX_CHUNKS_PER_REQUEST, WEIGHTS_BULK_PROTOCOL, chunkRuns, chunkSpan, manifestsEqual, requestChunks, requestChunksBulk, requestManifest } from '../../protocols/weights/index.js'
import type { BulkRequestOptions, WeightsManifest } from '../../protocols/weights/index.js'
import type { PartialCopy } from './partial-copy.js'

export interface ChunkFetcherInit {
  modelId: string
  copy: PartialCopy
  /** peers that announce the whole file now (the view), this node excluded */
  holders: () => string[]
  /** opens a weights stream to a peer (`/exo-p2p/weights/1.1.0` preferred, else 1.0.0) */
  dial: (peerId: string, signal: AbortSignal) => Promise<Stream>
  /**
   * The IP the connection to a peer reached (protocols/weights.md "Bulk path (1.1.0)"): ranges from a
   * holder that speaks 1.1.0 go over the bulk path to it. Absent, or undefined for a peer: the stream only.
   */
  bulkHost?: (peerId: string) => string | undefined
  /** where bulk connections go (tests: through a relay). Default: the host and the ticket's port */
  bulkAddress?: BulkRequestOptions['address']
  log: Logger
  /** streams in flight per holder on the libp2p stream (1.0.0). Default STREAMS_PER_HOLDER; one on the bulk path (BULK_STREAMS_PER_HOLDER) */
  streamsPerHolder?: number
  /** cap on the fetch rate, bytes/s (undefined: none) */
  maxBytesPerSec?: number
  /** give up when no usable holder was seen for this long. Default 60 s */
  noHolderTimeoutMs?: number
  /** awaited after each verified chunk (yield to activations: busyPacer). Default: none */
  pace?: (bytes: number, signal: AbortSignal) => Promise<void>
}

interface HolderState {
  status: 'unknown' | 'checking' | 'ok' | 'dropped'
  inflight: number
  retryAt: number
  reason?: string
  /** it speaks 1.1.0 and its address is known: ranges go over the bulk path */
  bulk?: boolean
  /** the bulk path failed with it: the stream only */
  noBulk?: boolean
}
interface Waiter { chunks: number[], background: boolean, resolve: () => void, reject: (e: Error) => void }

const RETRY_MS = 1000
/** streams in flight per holder: each has one yamux window (1 MiB) of data on the way */
export const STREAMS_PER_HOLDER = 4
/**
 * ranges in flight per holder on the bulk path: one TCP connection carries a LAN's bandwidth, and more
 * cost the fetcher CPU (scripts/bench-weights.ts: 4–6 CPU-s/GB with one, 8–11 with two or four)
 */
export const BULK_STREAMS_PER_HOLDER = 1

/**
 * Fetches chunks of one file from every holder at once (protocols/weights.md "Fetcher behaviour"):
 * `ensure(chunks)` resolves once they are all verified and written to the partial copy. A holder is
 * used after its manifest matched ours; one that sends a bad chunk, malformed frames, another file or
 * no such model is dropped for good; one that fails otherwise (gone, BUSY) is retried after 1 s.
 */
export class ChunkFetcher {
  private readonly holderState = new Map<string, HolderState>()
  private readonly queued = new Set<number>()
  /** chunks wanted in the background (completing the copy): handed out only when `queued` is empty */
  private readonly queuedLow = new Set<number>()
  private readonly inflight = new Set<number>()
  private readonly waiters = new Set<Waiter>()
  private readonly controller = new AbortController()
  private timer: NodeJS.Timeout | undefined
  private lastUsable = performance.now()
  /** throttle: when the next chunk may be handed over (node clock ms) */
  private due = 0
  /** bytes fetched from each holder (tests, logs) */
  readonly bytesFrom = new Map<string, number>()
  /** ranges fetched over the bulk path / over the libp2p stream (tests, logs) */
  readonly ranges = { bulk: 0, stream: 0 }

  /** what requests name (protocols/weights.md "File id") */
  private fileId: string

  constructor (private readonly init: ChunkFetcherInit) { this.fileId = init.modelId }

  /** Later requests name `fileId` (part 1 of a split model, once its header said so). */
  rename (fileId: string): void { this.fileId = fileId }

  private get manifest (): WeightsManifest { return this.init.copy.manifest }

  /**
   * Resolves when every chunk in `chunks` is verified in the copy. `background` chunks (completing the
   * copy) go out only while no other chunk is wanted.
   */
  async ensure (chunks: readonly number[], signal?: AbortSignal, options: { background?: boolean } = {}): Promise<void> {
    const missing = chunks.filter((c) => !this.init.copy.has(c))
    if (missing.length === 0) return
    for (const c of missing) {
      if (this.inflight.has(c)) continue
      if (options.background === true) { if (!this.queued.has(c)) this.queuedLow.add(c) } else { this.queuedLow.delete(c); this.queued.add(c) }
    }
    await new Promise<void>((resolve, reject) => {
      const w: Waiter = { chunks: missing, background: options.background === true, resolve, reject }
      this.waiters.add(w)
      signal?.addEventListener('abort', () => { this.waiters.delete(w); reject(new AbortedError('fetch aborted', { cause: signal.reason })) }, { once: true })
      this.lastUsable = performance.now()
      this.pump()
    })
  }

  /** Holders and why some were dropped (for logs and /cluster/state). */
  holders (): Array<{ peerId: string, status: string, reason?: string }> {
    return [...this.holderState].map(([peerId, s]) => ({ peerId, status: s.status, ...(s.reason !== undefined ? { reason: s.reason } : {}) }))
  }

  stop (): void {
    this.controller.abort(new AbortedError('fetcher stopped'))
    clearTimeout(this.timer)
    for (const w of this.waiters) w.reject(new AbortedError('fetcher stopped'))
    this.waiters.clear()
  }

  /** Whether a waiter that is not in the background wants chunk `c`. */
  private wantedNow (c: number): boolean {
    for (const w of this.waiters) if (!w.background && w.chunks.includes(c)) return true
    return false
  }

  private settle (): void {
    for (const w of [...this.waiters]) {
      if (w.chunks.every((c) => this.init.copy.has(c))) { this.waiters.delete(w); w.resolve() }
    }
  }

  private drop (peerId: string, reason: string): void {
    const s = this.holderState.get(peerId)
    if (s === undefined || s.status === 'dropped') return
    s.status = 'dropped'
    s.reason = reason
    this.init.log.warn({ model: this.fileId, peer: peerId, reason }, 'weights holder dropped for this fetch')
  }

  /** Starts requests on every holder with a free slot; re-arms itself while chunks are wanted. */
  private pump (): void {
    if (this.controller.signal.aborted) return
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.waiters.size === 0) return
    const now = performance.now()
    const live = new Set(this.init.holders())
    let usable = 0
    const ready: Array<[string, HolderState]> = []
    for (const id of live) {
      let s = this.holderState.get(id)
      if (s === undefined) { s = { status: 'unknown', inflight: 0, retryAt: 0 }; this.holderState.set(id, s) }
      if (s.status === 'dropped') continue
      usable++
      if (s.retryAt > now) continue
      if (s.status === 'unknown') { this.check(id, s); continue }
      if (s.status === 'ok') ready.push([id, s])
    }
    // round robin, one run per holder per pass, runs sized so every free slot of every holder gets work
    const streamSlots = this.init.streamsPerHolder ?? STREAMS_PER_HOLDER
    const slotsOf = (s: HolderState): number => s.bulk === true && s.noBulk !== true ? BULK_STREAMS_PER_HOLDER : streamSlots
    const maxRun = Math.max(1, Math.ceil((this.queued.size || this.queuedLow.size) / Math.max(1, ready.reduce((a, [, s]) => a + slotsOf(s), 0))))
    for (let started = true; started && this.queued.size + this.queuedLow.size > 0;) {
      started = false
      for (const [id, s] of ready) {
        if (s.inflight >= slotsOf(s) || this.queued.size + this.queuedLow.size === 0) continue
        this.start(id, s, maxRun)
        started = true
      }
    }
    if (usable > 0) this.lastUsable = now
    else if (now - this.lastUsable > (this.init.noHolderTimeoutMs ?? 60_000)) {
      const err = new NoHolderError(`no peer holding ${this.fileId} (with sha256 of the fetch) for ${Math.round((now - this.lastUsable) / 1000)} s; dropped: ${this.holders().filter((h) => h.status === 'dropped').map((h) => `${h.peerId.slice(-8)} (${h.reason ?? ''})`).join(', ') || 'none'}`)
      for (const w of this.waiters) w.reject(err)
      this.waiters.clear()
      return
    }
    this.timer = setTimeout(() => { this.pump() }, 250)
    this.timer.unref()
  }

  /** Asks a new holder for its manifest; usable only when it describes our file. */
  private check (peerId: string, s: HolderState): void {
    s.status = 'checking'
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(600_000)])
    void (async () => {
      const stream = await this.init.dial(peerId, signal)
      const m = await requestManifest(stream, this.fileId, { signal })
      if (!manifestsEqual({ ...m, provenance: this.manifest.provenance }, this.manifest)) { this.drop(peerId, 'its file differs from the one being fetched'); return }
      s.bulk = stream.protocol === WEIGHTS_BULK_PROTOCOL && this.init.bulkHost?.(peerId) !== undefined
      s.status = 'ok'
    })().catch((err: Error) => {
      if (s.status === 'checking') { s.status = 'unknown'; s.retryAt = performance.now() + RETRY_MS }
      if (err instanceof WeightsRequestError && err.wireCode === WeightsErrorCode.UnknownModel) this.drop(peerId, err.message)
    }).finally(() => { this.pump() })
  }

  private takeRun (maxRun: number): number[] {
    const from = this.queued.size > 0 ? this.queued : this.queuedLow
    const sorted = [...from].sort((a, b) => a - b)
    const run = chunkRuns(sorted, Math.min(MAX_CHUNKS_PER_REQUEST, maxRun))[0]!
    const chunks: number[] = []
    for (let c = run.first; c < run.first + run.count; c++) { chunks.push(c); from.delete(c); this.inflight.add(c) }
    return chunks
  }

  private start (peerId: string, s: HolderState, maxRun: number): void {
    const background = this.queued.size === 0
    const chunks = this.takeRun(maxRun)
    s.inflight++
    const signal = this.controller.signal
    void (async () => {
      const stream = await this.init.dial(peerId, signal)
      // a verified chunk is in the copy (written here, or by the bulk worker: `pieces` undefined)
      const onWritten = async (i: number, pieces?: Uint8Array[]): Promise<void> => {
        if (pieces !== undefined) await this.init.copy.write(i, pieces)
        else await this.init.copy.markWritten(i)
        this.inflight.delete(i)
        const { start, end } = chunkSpan(this.manifest, i)
        const n = end - start
        this.bytesFrom.set(peerId, (this.bytesFrom.get(peerId) ?? 0) + n)
        this.settle()
        await this.throttle(n, signal)
        await this.init.pace?.(n, signal)
      }
      const run = { first: chunks[0]!, count: chunks.length }
      const host = stream.protocol === WEIGHTS_BULK_PROTOCOL && s.noBulk !== true ? this.init.bulkHost?.(peerId) : undefined
      if (host !== undefined) {
        await requestChunksBulk(stream, this.fileId, this.manifest, run, onWritten, {
          signal,
          host,
          writeTo: { path: this.init.copy.path, onWritten: async (i) => { await onWritten(i) } },
          ...(this.init.bulkAddress !== undefined ? { address: this.init.bulkAddress } : {})
        })
        this.ranges.bulk++
      } else {
        await requestChunks(stream, this.fileId, this.manifest, run, onWritten, { signal })
        this.ranges.stream++
      }
    })().catch((err: Error) => {
      if (err instanceof BulkPathError) {
        // protocols/weights.md "Fallback": the same chunks at once on the libp2p stream; not a reason to drop the holder
        s.noBulk = true
        this.init.log.info({ model: this.fileId, peer: peerId, reason: err.reason, err: err.message }, 'weights bulk path unavailable: fetching from this holder over the libp2p stream')
      } else if (err instanceof ChunkVerificationError || err instanceof ProtocolDecodeError) this.drop(peerId, err.message)
      else if (err instanceof WeightsRequestError && (err.wireCode === WeightsErrorCode.FileChanged || err.wireCode === WeightsErrorCode.UnknownModel || err.wireCode === WeightsErrorCode.Malformed)) this.drop(peerId, err.message)
      else { s.retryAt = performance.now() + RETRY_MS; this.init.log.debug({ peer: peerId, err: err.message }, 'weights request failed; retrying') }
    }).finally(() => {
      s.inflight--
      for (const c of chunks) if (this.inflight.delete(c) && !this.init.copy.has(c)) (background && !this.wantedNow(c) ? this.queuedLow : this.queued).add(c)
      this.pump()
    })
  }

  /**
   * Sleeps so the fetch stays under `maxBytesPerSec` (the holder waits meanwhile: yamux backpressure):
   * chunks are spaced `bytes / cap` apart across all streams; time spent idle earns no burst.
   */
  private async throttle (bytes: number, signal: AbortSignal): Promise<void> {
    const cap = this.init.maxBytesPerSec
    if (cap === undefined || cap <= 0) return
    const now = performance.now()
    const start = Math.max(this.due, now)
    this.due = start + (bytes / cap) * 1000
    if (start > now) await new Promise<void>((resolve) => { const t = setTimeout(resolve, start - now); signal.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true }) })
  }

  /** Bytes of `chunks` not verified yet. */
  missingBytes (chunks: readonly number[]): number {
    let n = 0
    for (const c of chunks) if (!this.init.copy.has(c)) { const { start, end } = chunkSpan(this.manifest, c); n += end - start }
    return n
  }
}
