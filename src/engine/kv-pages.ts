/**
 * Cells of one shared KV store, handed out to sequences in pages of PAGE cells (pure, no native code).
 *
 * Every sequence of a shard lives in one K/V tensor per layer, so that one graph attends for all of them (a
 * mask keeps them apart, as llama.cpp's unified KV cache does with seq ids). A sequence's local cell l (its
 * position in the base cache, its ring slot in a sliding-window cache) lies in global cell
 * pages[l / PAGE] · PAGE + l % PAGE. A sequence alone holds pages 0, 1, 2, … — exactly the cells of a cache of its
 * own, so solo logits stay bit-identical to llama.cpp's. Together, each sequence's pages are in increasing order
 * and aligned to 32 cells, so its cells meet the SIMD lanes of ggml's dot products (8 or 32 wide on AVX2) at the
 * same offsets and in the same order as alone (cells of other sequences add exact zeros under the mask). Small
 * pages keep the cells a graph attends over (padded to KV_PAD) close to the cells in use; pages move only as
 * kv-compaction.ts plans (every sequence's pages stay in increasing order).
 */
import { KV_PAD } from './swa-cells.js'

export const PAGE = 32
/** pools hold a multiple of this many pages: a graph sees KV_PAD-padded cell counts */
const POOL_UNIT = KV_PAD / PAGE

/** cells a graph sees to cover [0, end): padded to KV_PAD (llama.cpp get_n_kv), at least KV_PAD */
export function paddedKv (end: number): number { return Math.max(KV_PAD, Math.ceil(end / KV_PAD) * KV_PAD) }

/** Free / used pages of one store. Grows by whole pages. */
export class PagePool {
  private used: Uint8Array

  constructor (pages: number) { this.used = new Uint8Array(unit(pages)) }

  get pages (): number { return this.used.length }
  get cells (): number { return this.used.length * PAGE }
  get usedPages (): number { let n = 0; for (const u of this.used) n += u; return n }

  /** The lowest free page above `after` (-1: any), marked used; undefined when none is free above it. */
  allocAfter (after: number): number | undefined {
    for (let p = after + 1; p < this.used.length; p++) if (this.used[p] === 0) { this.used[p] = 1; return p }
    return undefined
  }

  free (pages: Iterable<number>): void { for (const p of pages) this.used[p] = 0 }

  /** The pages of `moves` change places: sources are freed, then destinations taken. */
  remap (moves: ReadonlyArray<{ from: number, to: number }>): void {
    for (const m of moves) this.used[m.from] = 0
    for (const m of moves) this.used[m.to] = 1
  }

  isFree (p: number): boolean { return this.used[p] === 0 }

  /** The n-th (1-based) free page above page `after`, undefined when fewer are free. */
  nthFreeAbove (after: number, n: number): number | undefined {
    let k = 0
    for (let p = after + 1; p < this.used.length; p++) if (this.used[p] === 0 && ++k >= n) return p
    return undefined
  }

  /** Room for `pages` pages in all (existing pages keep their index). */
  grow (pages: number): void {
    if (pages <= this.used.length) return
    const next = new Uint8Array(unit(pages))
    next.set(this.used)
    this.used = next
  }
}

function unit (pages: number): number { return Math.max(POOL_UNIT, Math.ceil(pages / POOL_UNIT) * POOL_UNIT) }

/** One sequence's pages in one store. */
export class SeqPages {
  private readonly list: number[] = []

  get pages (): readonly number[] { return this.list }
  /** local cells covered by the pages held */
  get cells (): number { return this.list.length * PAGE }

  /** global cell of local cell l (l < cells) */
  cellOf (l: number): number { return this.list[Math.floor(l / PAGE)]! * PAGE + (l % PAGE) }

  /** one past the highest global cell held (0 when none) */
  get end (): number { return this.list.length === 0 ? 0 : (this.list[this.list.length - 1]! + 1) * PAGE }

  /**
   * Holds pages for local cells [0, localCells). Returns false (holding what it got) when the pool has no free
   * page above the last one held: the caller grows the pool and calls again.
   */
  ensure (localCells: number, pool: PagePool): boolean {
    while (this.list.length * PAGE < localCells) {
      const p = pool.allocAfter(this.list.length === 0 ? -1 : this.list[this.list.length - 1]!)
      if (p === undefined) return false
      this.list.push(p)
    }
    return true
  }

  /** Frees the pages beyond local cells [0, localCells). */
  shrink (localCells: number, pool: PagePool): void {
    const keep = Math.ceil(localCells / PAGE)
    if (this.list.length > keep) pool.free(this.list.splice(keep))
  }

  release (pool: PagePool): void { pool.free(this.list.splice(0)) }

  /** Takes `pages` (increasing, as many as held) in place of the pages held: the pool's bookkeeping is the caller's. */
  assign (pages: readonly number[]): void {
    if (pages.length !== this.list.length || pages.some((p, i) => i > 0 && p <= pages[i - 1]!)) throw new Error(`internal: pages ${pages.join(',')} do not replace ${this.list.join(',')}`)
    this.list.splice(0, this.list.length, ...pages)
  }
}
