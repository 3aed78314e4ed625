import { KvStoreBrokenError } from '../shared/errors/engine-errors.js'
import { UBATCH } from './batch-step.js'
import { PAGE } from './kv-pages.js'
import { planCompaction } from './kv-compaction.js'
import { movePages } from './kv-page-mover.js'
import type { KvStore } from './kv-store.js'
import type { SeqPages } from './kv-pages.js'
import type { ShardRuntime } from './shard-runtime.js'

/** A sequence stays hot this many steps after it last computed (at least 4 × its pipeline depth: a stream of a pipeline computes every few steps at a stage). */
export const HOT_STEPS = 16

export interface CompactableSeq {
  readonly pages: SeqPages
  readonly swaPages: SeqPages | undefined
  readonly pipelineDepth: number
  /** its context (cells, padded): the most base pages it holds */
  readonly paddedContext: number
  /** its sliding-window ring (cells): the most sliding-window pages it holds */
  readonly swa: { readonly size: number } | undefined
}

export interface KvCompactionStats {
  /** compactions of a pool that moved pages */
  compactions: number
  pagesMoved: number
}

/**
 * Keeps the pages of a shard's hot sequences — those with a pending forward, or that computed within the last
 * HOT_STEPS steps — at the bottom of its KV store, so a step's graph spans about their cells only, however many
 * idle sequences (retained prefixes, streams waiting on other stages) the store holds (kv-compaction.ts plans,
 * kv-page-mover.ts moves). Runs before a step places its tokens, on the shard's compute queue.
 */
export class KvCompactor {
  private step = 0
  private readonly last = new Map<CompactableSeq, number>()
  readonly stats: KvCompactionStats = { compactions: 0, pagesMoved: 0 }

  constructor (private readonly shard: ShardRuntime) {}

  /** The sequences of a step computed. */
  stepped (seqs: Iterable<CompactableSeq>): void {
    this.step++
    for (const s of seqs) this.last.set(s, this.step)
  }

  forget (seq: CompactableSeq): void { this.last.delete(seq) }

  private hot (seq: CompactableSeq, pending: ReadonlySet<CompactableSeq>): boolean {
    if (pending.has(seq)) return true
    const l = this.last.get(seq)
    return l !== undefined && this.step - l < Math.max(HOT_STEPS, 4 * seq.pipelineDepth)
  }

  /**
   * Moves pages when at least MIN_GAIN_PAGES pages below the hot sequences' top are cold or free.
   * @param live every sequence holding pages of `store`
   * @param pending sequences with a forward waiting (hot whatever their history)
   * @throws KvStoreBrokenError when the pages could not be moved (the store no longer matches its bookkeeping)
   */
  async compact (store: KvStore, live: readonly CompactableSeq[], pending: ReadonlySet<CompactableSeq>): Promise<void> {
    if (this.shard.options.kvCompaction === false) return
    const hot = new Set(live.filter((s) => this.hot(s, pending)))
    // room above the hot region for a step's new pages: a micro-batch of tokens plus a partial page per sequence
    const reserve = Math.ceil(UBATCH / PAGE) + pending.size
    await this.pool(store, false, live.map((s) => ({ pages: s.pages, hot: hot.has(s), cap: Math.ceil(s.paddedContext / PAGE) })), reserve)
    if (store.swaPool === undefined) return
    const swa = live.flatMap((s) => s.swaPages === undefined ? [] : [{ pages: s.swaPages, hot: hot.has(s), cap: Math.ceil((s.swa?.size ?? 0) / PAGE) }])
    await this.pool(store, true, swa, reserve)
  }

  private async pool (store: KvStore, swa: boolean, seqs: ReadonlyArray<{ pages: SeqPages, hot: boolean, cap: number }>, reserve: number): Promise<void> {
    const pool = swa ? store.swaPool! : store.base
    const plan = planCompaction(pool.pages, seqs.map((s) => ({ pages: s.pages.pages, hot: s.hot, cap: s.cap })), { reserve, isFree: (p) => pool.isFree(p) })
    if (plan === undefined || plan.moves.length === 0) return
    // bookkeeping first: a sequence released while its pages move frees the new ones (nothing allocates before the next step)
    pool.remap(plan.moves)
    seqs.forEach((s, i) => s.pages.assign(plan.pages[i]!))
    try {
      await movePages(this.shard, store.cacheLayers(swa), swa ? store.swaCells : store.cells, store.vTransposed, plan.moves)
    } catch (err) {
      throw new KvStoreBrokenError(`moving ${plan.moves.length} pages of the KV store failed`, { cause: err })
    }
    this.stats.compactions++
    this.stats.pagesMoved += plan.moves.length
  }
}
