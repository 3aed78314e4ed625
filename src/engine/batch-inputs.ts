/**
 * The inputs of one batched forward graph (pure): positions, the global cache cell of every token, the KQ masks
 * that keep sequences apart (llama.cpp's set_input_kq_mask over a unified cache with seq ids: a token sees only
 * cells of its own sequence at positions ≤ its own, and — in a sliding-window cache — inside the window), and the
 * rows whose output is kept.
 */
import { isMaskedSwa } from './swa-cells.js'
import { PAGE, paddedKv } from './kv-pages.js'
import type { SeqPages } from './kv-pages.js'
import type { SwaType } from './hparams.js'

const F16_ZERO = 0x0000
const F16_NEG_INF = 0xfc00

/** One sequence's tokens in the batch: positions [pos0, pos0 + n). */
export interface BatchSegment {
  pos0: number
  n: number
  /** the sequence's pages in the base cache (local cell = position) */
  pages: SeqPages
  /** sliding-window cache: the tokens' ring slots, the position every slot then holds (-1 empty), the ring's pages */
  swa?: { slots: readonly number[], cellPos: Int32Array, pages: SeqPages }
  /** rows (0 … n − 1 within the segment) whose output is kept */
  outRows: readonly number[]
}

export interface BatchInputs {
  nTokens: number
  /** (n) i32 */
  pos: Int32Array
  /** (n) global base-cache cell per token */
  cells: Int32Array
  /** (n) global sliding-window cell per token (undefined without sliding-window cache) */
  swaCells: Int32Array | undefined
  /** rows of the batch whose output is kept, in segment order */
  outIds: Int32Array
  /** cells the graph sees: base and sliding-window (padded to pages) */
  nKv: number
  nKvSwa: number
  /**
   * per segment, the cells its own attention spans instead ([cell0, cell0 + nKv) of the base / sliding-window
   * cache): set when the graph has several segments and their spans hold clearly fewer (token, cell) pairs than
   * all of them over [0, nKv) — each token then attends over its own sequence's cells only (llama.cpp's
   * non-unified cache: one KV stream per sequence)
   */
  spans: SegmentSpan[] | undefined
  spansSwa: SegmentSpan[] | undefined
}

/** The cells one segment's attention spans. */
export interface SegmentSpan { cell0: number, nKv: number }

/** a segment's span covers whole multiples of this many cells (fewer graph rebuilds as sequences grow) */
export const SPAN_PAD = 128
/** spans are used when their (token, cell) pairs are at most this fraction of the whole graph's (separate ops per sequence cost a little) */
const SPAN_GAIN = 0.5

/**
 * @param cacheCells cells of the base and sliding-window caches (a span never runs past them; 0: no spans)
 */
export function batchInputs (segs: readonly BatchSegment[], cacheCells: { base: number, swa: number } = { base: 0, swa: 0 }): BatchInputs {
  const n = segs.reduce((a, s) => a + s.n, 0)
  const pos = new Int32Array(n)
  const cells = new Int32Array(n)
  const hasSwa = segs.some((s) => s.swa !== undefined)
  const swaCells = hasSwa ? new Int32Array(n) : undefined
  const out: number[] = []
  let nKv = paddedKv(0)
  let nKvSwa = hasSwa ? paddedKv(0) : 0
  let row = 0
  for (const s of segs) {
    for (let i = 0; i < s.n; i++) {
      pos[row + i] = s.pos0 + i
      cells[row + i] = s.pages.cellOf(s.pos0 + i)
      if (swaCells !== undefined) swaCells[row + i] = s.swa!.pages.cellOf(s.swa!.slots[i]!)
    }
    for (const r of s.outRows) out.push(row + r)
    nKv = Math.max(nKv, pageEnd(s.pages, s.pos0 + s.n))
    if (s.swa !== undefined) nKvSwa = Math.max(nKvSwa, pageEnd(s.swa.pages, usedMaxP1(s.swa.cellPos)))
    row += s.n
  }
  const spans = segs.length > 1 ? segmentSpans(segs, nKv, cacheCells.base, (s) => ({ pages: s.pages, end: s.pos0 + s.n })) : undefined
  const spansSwa = hasSwa && segs.length > 1 ? segmentSpans(segs, nKvSwa, cacheCells.swa, (s) => ({ pages: s.swa!.pages, end: usedMaxP1(s.swa!.cellPos) })) : undefined
  return { nTokens: n, pos, cells, swaCells, outIds: Int32Array.from(out), nKv, nKvSwa, spans, spansSwa }
}

/** Each segment's span — from its first page to the end of the page holding its last used local cell — when worth it. */
function segmentSpans (segs: readonly BatchSegment[], nKv: number, cells: number, of: (s: BatchSegment) => { pages: SeqPages, end: number }): SegmentSpan[] | undefined {
  if (cells <= 0) return undefined
  let pairs = 0
  let all = 0
  const out = segs.map((s) => {
    const { pages, end } = of(s)
    const cell0 = pages.pages.length === 0 ? 0 : pages.pages[0]! * PAGE
    const last = end <= 0 ? cell0 + PAGE : pageEnd(pages, end, false)
    const span = Math.min(Math.ceil((last - cell0) / SPAN_PAD) * SPAN_PAD, cells - cell0)
    pairs += span * s.n
    all += nKv * s.n
    return { cell0, nKv: span }
  })
  return pairs <= SPAN_GAIN * all ? out : undefined
}

/** cells a graph sees to cover local cells [0, localCells) of `pages`: one past the global end of the page holding the last, padded */
function pageEnd (pages: SeqPages, localCells: number, pad = true): number {
  if (localCells <= 0) return paddedKv(0)
  const end = pages.pages[Math.ceil(localCells / PAGE) - 1]! * PAGE + PAGE
  return pad ? paddedKv(end) : end
}

function usedMaxP1 (cellPos: Int32Array): number {
  for (let i = cellPos.length - 1; i >= 0; i--) if (cellPos[i]! >= 0) return i + 1
  return 0
}

/** (nKv, n) base-cache mask, row-major by token: cell visible iff it is the token's sequence's, at a position ≤ its own. */
export function batchBaseMask (segs: readonly BatchSegment[], nKv: number, f16: boolean): Float32Array | Uint16Array {
  const n = segs.reduce((a, s) => a + s.n, 0)
  const m = f16 ? new Uint16Array(nKv * n).fill(F16_NEG_INF) : new Float32Array(nKv * n).fill(-Infinity)
  let row = 0
  for (const s of segs) {
    fillBaseMask(m, s, row, 0, nKv, f16)
    row += s.n
  }
  return m
}

/** (span.nKv, seg.n) base-cache mask of one segment over its own span (cells cell0 …) */
export function segmentBaseMask (seg: BatchSegment, span: SegmentSpan, f16: boolean): Float32Array | Uint16Array {
  const m = f16 ? new Uint16Array(span.nKv * seg.n).fill(F16_NEG_INF) : new Float32Array(span.nKv * seg.n).fill(-Infinity)
  fillBaseMask(m, seg, 0, span.cell0, span.nKv, f16)
  return m
}

function fillBaseMask (m: Float32Array | Uint16Array, s: BatchSegment, row: number, cell0: number, nKv: number, f16: boolean): void {
  const keep = f16 ? F16_ZERO : 0
  const pages = s.pages.pages
  for (let i = 0; i < s.n; i++) {
    const p = s.pos0 + i
    const base = (row + i) * nKv - cell0
    for (let k = 0; k * PAGE <= p; k++) {
      const c0 = pages[k]! * PAGE
      m.fill(keep, base + c0, base + c0 + Math.min(PAGE, p - k * PAGE + 1))
    }
  }
}

/** (nKvSwa, n) sliding-window mask: the sequence's ring cells holding a position ≤ the token's, inside its window. */
export function batchSwaMask (segs: readonly BatchSegment[], nKvSwa: number, f16: boolean, nSwa: number, type: SwaType): Float32Array | Uint16Array {
  const n = segs.reduce((a, s) => a + s.n, 0)
  const m = f16 ? new Uint16Array(nKvSwa * n).fill(F16_NEG_INF) : new Float32Array(nKvSwa * n).fill(-Infinity)
  let row = 0
  for (const s of segs) {
    fillSwaMask(m, s, row, 0, nKvSwa, f16, nSwa, type)
    row += s.n
  }
  return m
}

/** (span.nKv, seg.n) sliding-window mask of one segment over its own span of the sliding-window cache */
export function segmentSwaMask (seg: BatchSegment, span: SegmentSpan, f16: boolean, nSwa: number, type: SwaType): Float32Array | Uint16Array {
  const m = f16 ? new Uint16Array(span.nKv * seg.n).fill(F16_NEG_INF) : new Float32Array(span.nKv * seg.n).fill(-Infinity)
  fillSwaMask(m, seg, 0, span.cell0, span.nKv, f16, nSwa, type)
  return m
}

function fillSwaMask (m: Float32Array | Uint16Array, s: BatchSegment, row: number, cell0: number, nKv: number, f16: boolean, nSwa: number, type: SwaType): void {
  const keep = f16 ? F16_ZERO : 0
  const w = s.swa!
  const nLocal = Math.min(w.cellPos.length, w.pages.cells)
  for (let i = 0; i < s.n; i++) {
    const p1 = s.pos0 + i
    const base = (row + i) * nKv - cell0
    for (let l = 0; l < nLocal; l++) {
      const p0 = w.cellPos[l]!
      if (p0 >= 0 && p0 <= p1 && !isMaskedSwa(nSwa, type, p0, p1)) m[base + w.pages.cellOf(l)] = keep
    }
  }
}
