/**
 * Compaction of one page pool of the shared KV store (pure, no native code; llama.cpp's KV defrag is the model).
 *
 * A step's graph attends over the cells [0, nKv) with nKv one past the highest page of the sequences it computes
 * (kv-pages.ts), so pages of idle sequences — a finished request's KV retained for prefix reuse, a stream waiting
 * on another stage — below them cost every step, and so do holes left by freed sequences. The plan moves the pages
 * of the hot sequences (those computing now or lately) down to the bottom, each on consecutive pages with room
 * above them to grow into (a batched step's attention spans each sequence's own pages: batch-inputs.ts), and the
 * pages of cold ones, when they are in the way, to the top of the pool, in order. Every sequence's pages stay in
 * increasing order (what bit-exactness with a solo run rests on: see kv-pages.ts), and a sequence alone ends on
 * pages 0, 1, 2, … as in a cache of its own.
 */

export interface PageMove { from: number, to: number }

/** One sequence's pages in the pool (increasing), whether it computes now or did lately, and the most pages it can hold. */
export interface CompactionSeq { pages: readonly number[], hot: boolean, cap?: number }

export interface CompactionPlan {
  /** pages whose index changes (a permutation of used pages into used-or-free pages) */
  moves: PageMove[]
  /** each input sequence's pages afterwards, in input order */
  pages: number[][]
}

/** Moving pages pays off once this many pages (256 cells, the padding of a graph's cell count) are wasted below the hot top. */
export const MIN_GAIN_PAGES = 8

export interface CompactionOptions {
  /** free pages wanted above the hot region (a step's new pages): cold pages below it go to the top */
  reserve?: number
  minGain?: number
  /** whether page p is free (to see the room each hot sequence has above its last page); default: no room */
  isFree?: (p: number) => boolean
}

/** free pages a hot sequence is given to grow into after its block: half its pages (growth by 1.5×), within its cap */
function roomOf (s: CompactionSeq): number { return Math.max(0, Math.min(Math.max(1, Math.ceil(s.pages.length / 2)), (s.cap ?? Number.POSITIVE_INFINITY) - s.pages.length)) }

/**
 * The moves that lay the hot sequences out at the bottom — each on consecutive pages followed by room to grow
 * (so that its attention spans its own cells, batch-inputs.ts) — or undefined when the layout is good enough: fewer
 * than `minGain` pages below the hot top are cold, holes or beyond the rooms, and the hot sequences' own spans hold
 * fewer than max(minGain, hot pages / 4) pages of others.
 * @param poolPages pages of the pool
 */
export function planCompaction (poolPages: number, seqs: readonly CompactionSeq[], o: CompactionOptions = {}): CompactionPlan | undefined {
  const minGain = o.minGain ?? MIN_GAIN_PAGES
  // every step asks: decide from the hot sequences alone (cheap), look at the cold ones only to move pages
  let hotTop = 0
  let hotCount = 0
  let spanWaste = 0
  let rooms = 0
  let topRoom = 0
  for (const s of seqs) {
    const n = s.pages.length
    if (!s.hot || n === 0) continue
    const last = s.pages[n - 1]!
    hotCount += n
    spanWaste += last - s.pages[0]! + 1 - n
    let r = 0
    if (o.isFree !== undefined) for (const want = roomOf(s); r < want && last + 1 + r < poolPages && o.isFree(last + 1 + r);) r++
    rooms += r
    if (last + 1 > hotTop) { hotTop = last + 1; topRoom = r }
  }
  const waste = hotTop - hotCount - (rooms - topRoom)
  if (waste < minGain && spanWaste < Math.max(minGain, hotCount / 4)) return undefined
  const hot = seqs.map((s, i) => ({ s, i })).filter(({ s }) => s.hot && s.pages.length > 0).sort((a, b) => a.s.pages[0]! - b.s.pages[0]!)
  const cold: number[] = []
  for (const s of seqs) if (!s.hot) cold.push(...s.pages)
  cold.sort((a, b) => a - b)
  const reserve = o.reserve ?? 0
  let room = hot.map(({ s }) => roomOf(s))
  const want = hotCount + room.reduce((a, r) => a + r, 0)
  const coldStays = cold.length === 0 || cold[0]! >= want + reserve
  // rooms are where a step's new pages go: they may take all the free pages below the cold ones
  const roomBudget = Math.max(0, (coldStays ? poolPages : poolPages - cold.length) - hotCount)
  const allRoom = want - hotCount
  if (allRoom > roomBudget) room = room.map((r) => Math.floor(r * roomBudget / allRoom))
  const to = new Map<number, number>()
  let at = 0
  hot.forEach(({ s }, k) => {
    s.pages.forEach((p, j) => to.set(p, at + j))
    at += s.pages.length + room[k]!
  })
  if (!coldStays) cold.forEach((p, j) => to.set(p, poolPages - cold.length + j))
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
