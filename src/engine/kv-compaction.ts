/**
 * Compaction of one page pool of the shared KV store (pure, no native code; llama.cpp's KV defrag is the model).
 *
 * A step's graph attends over the cells [0, nKv) with nKv one past the highest page of the sequences it computes
 * (kv-pages.ts), so pages of idle sequences — a finished request's KV retained for prefix reuse, a stream waiting
 * on another stage — below them cost every step, and so do holes left by freed sequences. The plan moves the pages
 * of the hot sequences (those computing now or lately) down to [0, hot pages), in their present order, and the
 * pages of cold ones, when they are in the way, to the top of the pool, also in order: a monotone map on each
 * side, so every sequence's pages stay in increasing order (what bit-exactness with a solo run rests on: see
 * kv-pages.ts) and a sequence alone ends on pages 0, 1, 2, … as in a cache of its own. Hot sequences then grow
 * into the free pages between the two regions.
 */

export interface PageMove { from: number, to: number }

/** One sequence's pages in the pool (increasing) and whether it computes now or did lately. */
export interface CompactionSeq { pages: readonly number[], hot: boolean }

export interface CompactionPlan {
  /** pages whose index changes (a permutation of used pages into used-or-free pages) */
  moves: PageMove[]
  /** each input sequence's pages afterwards, in input order */
  pages: number[][]
}

/** Moving pages pays off once this many pages (256 cells, the padding of a graph's cell count) are wasted below the hot top. */
export const MIN_GAIN_PAGES = 8

/**
 * The moves that put the hot sequences' pages at the bottom, or undefined when fewer than `minGain` pages inside
 * the hot span [0, highest hot page] are cold or free.
 * @param poolPages pages of the pool
 * @param reserve free pages wanted above the hot region: cold pages below hot pages + reserve go to the top
 */
export function planCompaction (poolPages: number, seqs: readonly CompactionSeq[], reserve = 0, minGain = MIN_GAIN_PAGES): CompactionPlan | undefined {
  // every step asks: decide from the hot sequences alone (cheap), look at the cold ones only to move pages
  let hotTop = 0
  let hotCount = 0
  for (const s of seqs) {
    if (!s.hot || s.pages.length === 0) continue
    hotCount += s.pages.length
    hotTop = Math.max(hotTop, s.pages[s.pages.length - 1]! + 1)
  }
  if (hotTop - hotCount < minGain) return undefined
  const hot: number[] = []
  const cold: number[] = []
  for (const s of seqs) for (const p of s.pages) (s.hot ? hot : cold).push(p)
  hot.sort((a, b) => a - b)
  cold.sort((a, b) => a - b)
  const to = new Map<number, number>()
  hot.forEach((p, i) => to.set(p, i))
  const floor = Math.min(hot.length + reserve, poolPages - cold.length)
  if (cold.length > 0 && cold[0]! < floor) cold.forEach((p, j) => to.set(p, poolPages - cold.length + j))
  const moves: PageMove[] = []
  for (const [from, dst] of to) if (from !== dst) moves.push({ from, to: dst })
  return { moves, pages: seqs.map((s) => s.pages.map((p) => to.get(p) ?? p)) }
}

/**
 * Splits a plan's moves into waves that run one after the other, each read completely before it is written (one
 * graph: gather, then scatter): a wave holds moves whose destination no later wave still reads, at most
 * `maxPerWave` of them (the temporaries of a wave are its pages), except a cycle, which goes whole into one wave.
 */
export function moveWaves (moves: readonly PageMove[], maxPerWave: number): PageMove[][] {
  const cap = Math.max(1, maxPerWave)
  const pending = new Map<number, PageMove>(moves.map((m) => [m.from, m]))
  const waves: PageMove[][] = []
  while (pending.size > 0) {
    const wave: PageMove[] = []
    for (const m of pending.values()) {
      if (wave.length >= cap) break
      // its destination is free, or holds a page that is moved away in an earlier wave
      if (!pending.has(m.to)) wave.push(m)
    }
    if (wave.length === 0) {
      // only cycles are left: the first one goes whole (every page of it read before any is written)
      const start = pending.values().next().value!
      let m: PageMove | undefined = start
      while (m !== undefined && !wave.includes(m)) { wave.push(m); m = pending.get(m.to) }
    }
    for (const m of wave) pending.delete(m.from)
    waves.push(wave)
  }
  return waves
}
