import { layerKvWidths } from './arch/arch-spec.js'
import { NativeCallError } from '../shared/errors/engine-errors.js'
import { PAGE, PagePool } from './kv-pages.js'
import { layerWindow, swaWindowOf } from './swa-cells.js'
import { allocContextTensors, clearBuffer, cpuDevice, deviceBufferType, freeBuffer, freeContext, ggml, newContext, newTensor, tensorGet, tensorSet, GGML_TYPE } from './native/ggml.js'
import { graphNodeBound } from './forward-graph.js'
import { newGraphAllocator } from './graph-allocator.js'
import { onDevice } from './shard-placement.js'
import type { KvCacheView } from './forward-graph.js'
import type { CacheLayer } from './kv-page-mover.js'
import type { GraphAllocator } from './graph-allocator.js'
import type { ShardRuntime } from './shard-runtime.js'
import type { Ptr, Tensor } from './native/ggml.js'

const F16 = 2

/**
 * The KV cache of every sequence of one shard: per owned layer one F16 K tensor (kWidth, cells) and — unless the
 * layer reads V from K (MLA) — one V tensor, stored transposed without flash attention (element j of cell c at
 * j · cells + c, llama.cpp's layout). Full-attention layers share the base pool's cells, sliding-window layers
 * the sliding-window pool's. Each layer's cache lies on its layer's device (llama.cpp's offload_kqv). Sequences hold pages of these pools (kv-pages.ts); the store grows by copying into
 * larger tensors (graphs built on the old tensors must be rebuilt: `generation` changes).
 */
export class KvStore implements KvCacheView {
  readonly base: PagePool
  readonly swaPool: PagePool | undefined
  /** compute buffers of every graph over this store */
  readonly allocator: GraphAllocator
  /** bumped whenever the tensors are replaced */
  generation = 0
  /** per device (CPU, GPU): a context and its buffer, when it holds a cache */
  private parts: Array<{ ctx: Ptr, buf: Ptr }> = []
  private kCaches: Tensor[] = []
  private vCaches: Array<Tensor | undefined> = []
  private readonly widths: Array<{ k: number, v: number }>
  private readonly vMax: number
  private readonly swaLayer: boolean[]
  private disposed = false

  /**
   * @param cells initial cells of the base pool and the sliding-window pool: the first sequence's own cache sizes,
   * so that a sequence alone sees the cache llama.cpp would give it (ggml-vulkan's kernels follow the V stride)
   */
  constructor (private readonly shard: ShardRuntime, cells: { base: number, swa: number }) {
    const { arch, hparams: hp } = shard.description
    const { start, end } = shard.range
    this.widths = Array.from({ length: end - start }, (_, i) => layerKvWidths(arch, hp, start + i))
    // a transposed V cache (no flash attention) has the widest V width in every layer, as llama.cpp's
    this.vMax = Math.max(0, ...this.widths.map((w) => w.v))
    this.swaLayer = this.widths.map((_, i) => layerWindow(hp, start + i) > 0)
    this.base = new PagePool(Math.ceil(cells.base / PAGE))
    this.swaPool = swaWindowOf(hp, start, end) === undefined ? undefined : new PagePool(Math.ceil(cells.swa / PAGE))
    this.allocate()
    this.allocator = newGraphAllocator(shard, graphNodeBound(shard))
  }

  get cells (): number { return this.base.cells }
  get swaCells (): number { return this.swaPool?.cells ?? 0 }

  kCache (il: number): Tensor { return this.kCaches[il - this.shard.range.start]! }
  vCache (il: number): Tensor {
    const v = this.vCaches[il - this.shard.range.start]
    if (v === undefined) throw new NativeCallError(`layer ${il} has no V cache (its V is a view of K); the graph builder must not read it`)
    return v
  }

  /** the caches of the layers whose cells are the sliding-window pool's (`swa`) or the base pool's (kv-page-mover.ts) */
  cacheLayers (swa: boolean): CacheLayer[] {
    const out: CacheLayer[] = []
    for (let i = 0; i < this.widths.length; i++) {
      if (this.swaLayer[i] !== swa) continue
      out.push({ k: this.kCaches[i]!, v: this.vCaches[i], kWidth: this.widths[i]!.k, vWidth: this.widths[i]!.v === 0 ? 0 : this.vWidth(i) })
    }
    return out
  }

  /** V caches are stored transposed (no flash attention) */
  get vTransposed (): boolean { return this.shard.options.flashAttention !== true }

  /** bytes of all K/V tensors */
  get bytes (): number {
    let n = 0
    for (let i = 0; i < this.widths.length; i++) {
      const cells = this.layerCells(i)
      n += F16 * cells * (this.widths[i]!.k + (this.widths[i]!.v === 0 ? 0 : this.vWidth(i)))
    }
    return n
  }

  private vWidth (i: number): number { return this.shard.options.flashAttention === true ? this.widths[i]!.v : this.vMax }

  /** New tensors for the pools' current sizes; the old ones' cells are copied over (pages keep their index). */
  private allocate (): void {
    const old = { parts: this.parts, k: this.kCaches, v: this.vCaches, cells: this.oldCells }
    const { start: il0 } = this.shard.range
    const hp = this.shard.description.hparams
    const gpu = this.shard.gpu
    const onGpu = (i: number): boolean => gpu !== undefined && onDevice(gpu.placement, il0 + i, hp.nLayers)
    const ctxs = [newContext(2 * this.widths.length), newContext(2 * this.widths.length)]
    const used = [false, false]
    const k: Tensor[] = []
    const v: Array<Tensor | undefined> = []
    for (let i = 0; i < this.widths.length; i++) {
      const cells = this.layerCells(i)
      const d = onGpu(i) ? 1 : 0
      used[d] = true
      k.push(newTensor(ctxs[d]!, GGML_TYPE.F16, [this.widths[i]!.k, cells], `cache_k_l${il0 + i}`))
      v.push(this.widths[i]!.v === 0 ? undefined : newTensor(ctxs[d]!, GGML_TYPE.F16, [this.vWidth(i), cells], `cache_v_l${il0 + i}`))
    }
    const parts: Array<{ ctx: Ptr, buf: Ptr }> = []
    for (const d of [0, 1]) {
      if (!used[d]) { freeContext(ctxs[d]!); continue }
      const buft = d === 0 ? ggml().ggml_backend_dev_buffer_type(cpuDevice()) as Ptr : deviceBufferType(gpu!.dev)
      const buf = allocContextTensors(ctxs[d]!, buft, false)
      // masked cells still enter the attention products (×0): they must hold finite values
      clearBuffer(buf, 0)
      parts.push({ ctx: ctxs[d]!, buf })
    }
    if (old.parts.length > 0) {
      for (let i = 0; i < this.widths.length; i++) {
        const from = old.cells[i]!
        copyRows(old.k[i]!, k[i]!, this.widths[i]!.k * F16 * from)
        const ov = old.v[i]
        if (ov === undefined) continue
        const w = this.vWidth(i)
        if (this.shard.options.flashAttention === true) copyRows(ov, v[i]!, w * F16 * from)
        else copyTransposed(ov, v[i]!, w, from, this.layerCells(i))
      }
      for (const p of old.parts) { freeBuffer(p.buf); freeContext(p.ctx) }
    }
    this.parts = parts
    this.kCaches = k
    this.vCaches = v
    this.oldCells = this.widths.map((_, i) => this.layerCells(i))
    this.generation++
  }

  private layerCells (i: number): number { return this.swaLayer[i]! ? this.swaCells : this.cells }

  private oldCells: number[] = []

  /** Grows the pools to at least these many pages (doubling), copying every cell. */
  grow (basePages: number, swaPages: number): void {
    const b = Math.max(this.base.pages, basePages > this.base.pages ? Math.max(basePages, 2 * this.base.pages) : 0)
    const s = this.swaPool === undefined ? 0 : Math.max(this.swaPool.pages, swaPages > this.swaPool.pages ? Math.max(swaPages, 2 * this.swaPool.pages) : 0)
    if (b === this.base.pages && (this.swaPool === undefined || s === this.swaPool.pages)) return
    this.base.grow(b)
    this.swaPool?.grow(s)
    this.allocate()
  }

  dispose (): void {
    if (this.disposed) return
    this.disposed = true
    this.allocator.free()
    for (const p of this.parts) { freeBuffer(p.buf); freeContext(p.ctx) }
    this.parts = []
  }
}

/** the first `bytes` bytes of `from` into `to` */
function copyRows (from: Tensor, to: Tensor, bytes: number): void {
  const b = Buffer.allocUnsafe(bytes)
  tensorGet(from, b)
  tensorSet(to, b)
}

/** transposed V: `rows` rows of `fromCells` f16 each into rows of `toCells` */
function copyTransposed (from: Tensor, to: Tensor, rows: number, fromCells: number, toCells: number): void {
  const src = Buffer.allocUnsafe(rows * fromCells * F16)
  tensorGet(from, src)
  const dst = Buffer.alloc(rows * toCells * F16)
  for (let j = 0; j < rows; j++) src.copy(dst, j * toCells * F16, j * fromCells * F16, (j + 1) * fromCells * F16)
  tensorSet(to, dst)
}

export { PAGE }
