/**
 * Moves pages of the shared KV store (kv-compaction.ts plans them) with ggml itself, so the same code runs on
 * host and device buffers: per wave one graph that, layer by layer, gathers the moved pages' rows of K and V
 * (get_rows: f16 → f32, exact) and scatters them to their new pages (set_rows: f32 → f16, exact: every f16 value
 * is an f32 value). A wave's graph reads all its pages of a layer before it writes any, so a wave may hold a cycle.
 *
 * Rows: K (kWidth, cells) and V without transposition are (width · PAGE, pages) — one row per page; a transposed
 * V (element j of cell c at j · cells + c) is (PAGE, width · pages) — row j · pages + page.
 */
import { GraphBuilder } from './native/graph-builder.js'
import { GGML_TYPE, tensorSet } from './native/ggml.js'
import { newGraphAllocator } from './graph-allocator.js'
import { PAGE } from './kv-pages.js'
import { moveWaves } from './kv-compaction.js'
import type { PageMove } from './kv-compaction.js'
import type { ShardRuntime } from './shard-runtime.js'
import type { Tensor } from './native/ggml.js'

/** f32 temporaries one wave may hold for one cache tensor (its gather): bounds the pages of a wave */
const WAVE_BYTES = 16 * 2 ** 20

/** One owned layer's caches as kv-store.ts holds them. */
export interface CacheLayer { k: Tensor, v: Tensor | undefined, kWidth: number, vWidth: number }

/**
 * Applies `moves` (distinct sources, distinct destinations) to the caches of `layers`, all of one pool of `cells`
 * cells. Runs on the shard's backends; the caller holds the shard's compute queue.
 */
export async function movePages (shard: ShardRuntime, layers: readonly CacheLayer[], cells: number, vTransposed: boolean, moves: readonly PageMove[]): Promise<void> {
  if (layers.length === 0 || moves.length === 0) return
  const maxWidth = Math.max(...layers.map((l) => Math.max(l.kWidth, l.vWidth)))
  const perWave = Math.max(1, Math.floor(WAVE_BYTES / (4 * PAGE * maxWidth)))
  for (const wave of moveWaves(moves, perWave)) await runWave(shard, layers, cells, vTransposed, wave)
}

async function runWave (shard: ShardRuntime, layers: readonly CacheLayer[], cells: number, vTransposed: boolean, wave: readonly PageMove[]): Promise<void> {
  const pages = cells / PAGE
  const n = wave.length
  const maxNodes = 8 * layers.length + 16
  const g = new GraphBuilder(maxNodes)
  const alloc = newGraphAllocator(shard, maxNodes)
  try {
    const src = g.input(GGML_TYPE.I32, [n], 'kv_move_src')
    const dst = g.input(GGML_TYPE.I32, [n], 'kv_move_dst')
    // a transposed V has the same width in every layer (kv-store.ts): one pair of element-row indices serves all
    const vWidth = Math.max(0, ...layers.map((l) => l.v === undefined ? 0 : l.vWidth))
    const tv = vTransposed && vWidth > 0 ? { src: g.input(GGML_TYPE.I32, [n * vWidth], 'kv_move_vsrc'), dst: g.input(GGML_TYPE.I32, [n * vWidth], 'kv_move_vdst') } : undefined
    const move = (rows: Tensor, s: Tensor, d: Tensor): void => { g.expand(g.setRows(rows, g.getRows(rows, s), d)) }
    for (const l of layers) {
      move(g.reshape2d(l.k, l.kWidth * PAGE, pages), src, dst)
      if (l.v === undefined) continue
      if (tv !== undefined) move(g.reshape2d(l.v, PAGE, l.vWidth * pages), tv.src, tv.dst)
      else move(g.reshape2d(l.v, l.vWidth * PAGE, pages), src, dst)
    }
    alloc.alloc(g.graph, [], maxNodes)
    tensorSet(src, Int32Array.from(wave, (m) => m.from))
    tensorSet(dst, Int32Array.from(wave, (m) => m.to))
    if (tv !== undefined) {
      const s = new Int32Array(n * vWidth)
      const d = new Int32Array(n * vWidth)
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < vWidth; j++) { s[i * vWidth + j] = j * pages + wave[i]!.from; d[i * vWidth + j] = j * pages + wave[i]!.to }
      }
      tensorSet(tv.src, s)
      tensorSet(tv.dst, d)
    }
    await alloc.compute(g.graph)
  } finally {
    alloc.forget(g.graph)
    g.free()
    alloc.free()
  }
}
