/**
 * The cells of a sliding-window KV cache for one sequence: which position each cell holds, where the next
 * tokens go and how many cells a graph sees. A port of llama.cpp's llama_kv_cache (find_slot with cont = false,
 * apply_ubatch, seq_rm, get_n_kv) and llama_kv_cells for the single-sequence case, so that tokens land in the
 * same cells as in llama.cpp's SWA cache and attention sums run over the same cells in the same order (the
 * bit-exactness of the ring once it wraps). Pure: no native code.
 */
import type { HParams, SwaType } from './hparams.js'

/** KV lengths are padded to this (llama.cpp get_n_kv: max(n_pad, 256)); cache sizes are multiples of it. */
export const KV_PAD = 256

/** Sliding window of layer il (0 = full attention). */
export function layerWindow (hp: HParams, il: number): number { return hp.swaWindow?.[il] ?? 0 }

/** The window shared by the sliding-window layers in [start, end) (undefined when none slides). */
export function swaWindowOf (hp: HParams, start = 0, end = hp.nLayers): number | undefined {
  for (let il = start; il < end; il++) { const w = layerWindow(hp, il); if (w > 0) return w }
  return undefined
}

/** llama_hparams::is_masked_swa: is the cell at position p0 outside the window of a token at position p1? */
export function isMaskedSwa (nSwa: number, type: SwaType, p0: number, p1: number): boolean {
  switch (type) {
    case 'standard': return p1 - p0 >= nSwa
    case 'chunked': return p0 < Math.floor(p1 / nSwa) * nSwa
    case 'symmetric': { const half = Math.floor(nSwa / 2); const d = p1 - p0; return d < -half || d > half }
  }
}

/**
 * Cells of the SWA cache for a session of `contextSize` tokens whose base cache has `baseCells` cells:
 * llama_kv_cache_iswa's GGML_PAD(min(size_base, n_swa + n_ubatch), 256) with swa_full = false, where
 * node-llama-cpp 3.22.1 runs with n_ubatch = min(contextSize, ubatch) + 1 for models with a sliding window.
 */
export function swaCacheCells (baseCells: number, contextSize: number, nSwa: number, ubatch: number): number {
  const nUbatch = Math.min(contextSize, ubatch) + 1
  return Math.ceil(Math.min(baseCells, nSwa + nUbatch) / KV_PAD) * KV_PAD
}

/** KV cells a sliding-window layer of `window` holds in a session of `contextSize` tokens (the engine's UBATCH of 512). */
export function slidingWindowKvCells (contextSize: number, window: number): number {
  const base = Math.ceil(contextSize / KV_PAD) * KV_PAD
  return swaCacheCells(base, contextSize, window, 512)
}

export interface SwaCellsState { pos: Int32Array, head: number }

export class SwaCells {
  /** position held by each cell, -1 = empty */
  private pos: Int32Array
  private head = 0

  constructor (readonly size: number, readonly nSwa: number, readonly type: SwaType) {
    this.pos = new Int32Array(size).fill(-1)
  }

  /** position of every cell (-1 = empty); do not modify */
  get cellPositions (): Int32Array { return this.pos }

  snapshot (): SwaCellsState { return { pos: this.pos.slice(), head: this.head } }
  restore (s: SwaCellsState): void { this.pos = s.pos.slice(); this.head = s.head }

  private used (): number { let n = 0; for (const p of this.pos) if (p >= 0) n++; return n }
  /** smallest / largest position held (-1 when empty) */
  posMin (): number { let m = -1; for (const p of this.pos) if (p >= 0 && (m < 0 || p < m)) m = p; return m }
  posMax (): number { let m = -1; for (const p of this.pos) if (p > m) m = p; return m }

  /** llama_kv_cells::used_max_p1: index of the last used cell + 1 */
  private usedMaxP1 (): number {
    for (let i = this.size - 1; i >= 0; i--) if (this.pos[i]! >= 0) return i + 1
    return 0
  }

  /** KV cells a graph over this cache sees (llama_kv_cache::get_n_kv) */
  nKv (): number { return Math.min(this.size, Math.max(KV_PAD, Math.ceil(this.usedMaxP1() / KV_PAD) * KV_PAD)) }

  /** find_slot(ubatch, cont = false) for n tokens: the cells they go to, or undefined when none fit. */
  findSlot (n: number): number[] | undefined {
    const { size } = this
    let headCur = this.head
    if (headCur > this.used() + 2 * n) headCur = 0
    if (n > size) return undefined
    const seqPosMaxP1 = this.posMax() + 1
    const idxs: number[] = []
    let nTested = 0
    for (;;) {
      if (headCur + 1 > size) { nTested += size - headCur; headCur = 0; continue }
      const idx = headCur
      headCur++
      nTested++
      const p = this.pos[idx]!
      if (p < 0 || isMaskedSwa(this.nSwa, this.type, p, seqPosMaxP1)) idxs.push(idx)
      if (idxs.length === n) return idxs
      if (nTested >= size) return undefined
    }
  }

  /** apply_ubatch: tokens at `positions` go to cells `idxs`; older positions than those overwritten are purged. */
  apply (idxs: readonly number[], positions: ArrayLike<number>): void {
    let maxRm = -1
    for (let i = 0; i < idxs.length; i++) {
      const idx = idxs[i]!
      const old = this.pos[idx]!
      if (old >= 0) { if (old > maxRm) maxRm = old; this.pos[idx] = -1 }
      this.pos[idx] = positions[i]!
    }
    // keep every position in [pos_min, pos_max] present
    if (maxRm >= 0) {
      const min = this.posMin()
      if (min >= 0 && min <= maxRm) this.seqRm(min, maxRm + 1)
    }
    this.head = idxs[idxs.length - 1]! + 1
  }

  /** seq_rm: frees the cells holding positions in [p0, p1); the search for free cells restarts at the first freed. */
  seqRm (p0: number, p1: number): void {
    let newHead = this.size
    for (let i = 0; i < this.size; i++) {
      const p = this.pos[i]!
      if (p >= 0 && p >= p0 && p < p1) {
        this.pos[i] = -1
        if (newHead === this.size) newHead = i
      }
    }
    if (newHead !== this.size && newHead < this.head) this.head = newHead
  }
}
