/**
 * Cells of one shared KV store, handed out to sequences in pages of KV_PAD cells (pure, no native code).
 *
 * Every sequence of a shard lives in one K/V tensor per layer, so that one graph attends for all of them (a
 * mask keeps them apart, as llama.cpp's unified KV cache does with seq ids). A sequence's local cell l (its
 * position in the base cache, its ring slot in a sliding-window cache) lies in global cell
 * pages[l / PAGE] · PAGE + l % PAGE. Pages are page-aligned and a sequence's pages are in increasing order, so
 * its cells meet the SIMD lanes of ggml's dot products at the same offsets and in the same order as when it
 * runs alone in a cache of its own (cells of other sequences add exact zeros under the mask): batched logits
 * equal solo logits bit for bit wherever the kernels do not depend on the batch size.
 */
import { KV_PAD } from './swa-cells.js'

export const PAGE = KV_PAD

/** Free / used pages of one store. Grows by whole pages; pages are never moved. */
export class PagePool {
  private used: Uint8Array

  constructor (pages: number) { this.used = new Uint8Array(Math.max(1, pages)) }

  get pages (): number { return this.used.length }
  get cells (): number { return this.used.length * PAGE }
  get usedPages (): number { let n = 0; for (const u of this.used) n += u; return n }

  /** The lowest free page above `after` (-1: any), marked used; undefined when none is free above it. */
  allocAfter (after: number): number | undefined {
    for (let p = after + 1; p < this.used.length; p++) if (this.used[p] === 0) { this.used[p] = 1; return p }
    return undefined
  }

  free (pages: Iterable<number>): void { for (const p of pages) this.used[p] = 0 }

  /** Room for `pages` pages in all (existing pages keep their index). */
  grow (pages: number): void {
    if (pages <= this.used.length) return
    const next = new Uint8Array(pages)
    next.set(this.used)
    this.used = next
  }
}

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
}
