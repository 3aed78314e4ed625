import { layerKvWidths } from './arch/arch-spec.js'
import { GraphBuilder } from './native/graph-builder.js'
import { GGML_TYPE, tensorGet, tensorHasBuffer, tensorSet } from './native/ggml.js'
import { onDevice } from './shard-placement.js'
import type { GraphAllocator } from './graph-allocator.js'
import { batchBaseMask, batchSwaMask, segmentBaseMask, segmentSwaMask } from './batch-inputs.js'
import type { BatchInputs, BatchSegment, SegmentSpan } from './batch-inputs.js'
import { layerWindow, swaWindowOf } from './swa-cells.js'
import type { AttnSegment, LayerContext } from './arch/arch-spec.js'
import type { ShardRuntime } from './shard-runtime.js'
import type { Tensor } from './native/ggml.js'

/**
 * nKvSwa: cells of the sliding-window cache the graph sees (0 when the shard owns no sliding-window layer);
 * spans: spansKey of the per-sequence attention spans ('' when every token attends over [0, nKv))
 */
export interface GraphKey { nTokens: number, nKv: number, nKvSwa: number, nOut: number, kind: 'tokens' | 'hidden', generation: number, nCtxSeq: number, spans: string }

/** Per-sequence attention (batch-inputs.ts): each segment's tokens and its spans of the base / sliding-window cache. */
export interface GraphSpans { n: readonly number[], base: readonly SegmentSpan[] | undefined, swa: readonly SegmentSpan[] | undefined }

export function spansKey (s: GraphSpans | undefined): string {
  if (s === undefined || (s.base === undefined && s.swa === undefined)) return ''
  const one = (l: readonly SegmentSpan[] | undefined): string => l === undefined ? '-' : l.map((x, i) => `${s.n[i]}@${x.cell0}+${x.nKv}`).join(',')
  return `${one(s.base)}|${one(s.swa)}`
}

export interface KvCacheView {
  kCache: (il: number) => Tensor
  vCache: (il: number) => Tensor
  readonly cells: number
  /** cells of the sliding-window cache (0 = none) */
  readonly swaCells: number
  readonly allocator: GraphAllocator
}

/**
 * The attention inputs of one cache: rows for K and V, and the mask. A shard has one set for its full-attention
 * layers and one for its sliding-window layers (llama.cpp's iSWA input) — only those it uses: an input that is
 * not in the graph gets no buffer.
 */
interface AttnInputs { kIdxs: Tensor, vIdxs: Tensor, mask: Tensor, segments: AttnSegment[] | undefined }

/** llm_graph_input_attn_temp::set_input: (float) log(floor((pos + offset) / floorScale) + 1.0) · scale + 1.0 per token */
export function attnTemperatures (pos: Int32Array, t: { scale: number, floorScale: number, offset: number }): Float32Array {
  const f = Math.fround
  return Float32Array.from(pos, (p) => f(Math.log(Math.floor(f(f(p + t.offset) / t.floorScale)) + 1) * t.scale + 1))
}

/** Capacity of every forward graph of `shard` (nodes). */
export function graphNodeBound (shard: ShardRuntime): number {
  const { arch, hparams: hp } = shard.description
  return Math.max(2048, (arch.nodesPerLayer?.(hp) ?? 64) * (shard.range.end - shard.range.start) + 256)
}

/** One forward graph of a shard for a fixed key; inputs are re-set for every call. */
export class ForwardGraph implements GraphKey {
  readonly nTokens: number
  readonly nKv: number
  readonly nKvSwa: number
  readonly nOut: number
  readonly kind: 'tokens' | 'hidden'
  readonly generation: number
  readonly nCtxSeq: number
  readonly spans: string
  private readonly g: GraphBuilder
  private readonly inp: Tensor
  private readonly pos: Tensor
  private readonly base: AttnInputs | undefined
  private readonly swa: AttnInputs | undefined
  private readonly outIds: Tensor | undefined
  private readonly attnScale: Tensor | undefined
  private readonly out: Tensor
  private readonly outWidth: number
  private readonly flash: boolean
  private readonly nEmbdKv: number
  private readonly kvCells: number

  constructor (private readonly shard: ShardRuntime, private readonly kv: KvCacheView, key: GraphKey, spans?: GraphSpans) {
    ({ nTokens: this.nTokens, nKv: this.nKv, nKvSwa: this.nKvSwa, nOut: this.nOut, kind: this.kind, generation: this.generation, nCtxSeq: this.nCtxSeq, spans: this.spans } = key)
    if (spansKey(spans) !== this.spans) throw new Error('internal: graph spans do not match the key')
    const hp = shard.description.hparams
    const arch = shard.description.arch
    const n = this.nTokens
    this.flash = shard.options.flashAttention === true
    this.kvCells = kv.cells
    const nOwned = shard.range.end - shard.range.start
    // V row width of the (transposed) V cache; 0 when no owned layer keeps a V cache (MLA: V is a view of K)
    this.nEmbdKv = Math.max(0, ...Array.from({ length: nOwned }, (_, i) => layerKvWidths(arch, hp, shard.range.start + i).v))
    this.g = new GraphBuilder(graphNodeBound(shard))
    const g = this.g
    try {
      this.inp = this.kind === 'tokens' ? g.input(GGML_TYPE.I32, [n], 'inp_tokens') : g.input(GGML_TYPE.F32, [hp.nEmbd, n], 'inp_embd')
      this.pos = g.input(GGML_TYPE.I32, [n], 'inp_pos')
      const owned = Array.from({ length: shard.range.end - shard.range.start }, (_, i) => layerWindow(hp, shard.range.start + i))
      const maskType = this.flash ? GGML_TYPE.F16 : GGML_TYPE.F32
      const attnInputs = (nKv: number, suffix: string, segSpans: readonly SegmentSpan[] | undefined): AttnInputs => {
        let row0 = 0
        return {
          kIdxs: g.input(GGML_TYPE.I64, [n], `attn_inp_k_idxs${suffix}`),
          // without V caches this input stays out of the graph (never allocated, never set)
          vIdxs: g.input(GGML_TYPE.I64, [this.flash || this.nEmbdKv === 0 ? n : n * this.nEmbdKv], `attn_inp_v_idxs${suffix}`),
          // inputs no op reads (the whole-graph mask when attention runs per sequence, or the reverse) get no buffer and are not set
          mask: g.input(maskType, [nKv, n, 1, 1], `attn_inp_kq_mask${suffix}`),
          segments: segSpans?.map((sp, i) => {
            const rows = spans!.n[i]!
            const seg = { row0, n: rows, cell0: sp.cell0, nKv: sp.nKv, mask: g.input(maskType, [sp.nKv, rows, 1, 1], `attn_inp_kq_mask${suffix}_s${i}`) }
            row0 += rows
            return seg
          })
        }
      }
      this.base = owned.some((w) => w === 0) ? attnInputs(this.nKv, '', spans?.base) : undefined
      this.swa = owned.some((w) => w > 0) ? attnInputs(this.nKvSwa, '_swa', spans?.swa) : undefined
      const attn = (this.base ?? this.swa)!
      this.attnScale = hp.attnTemperature === undefined ? undefined : g.input(GGML_TYPE.F32, [1, 1, n], 'inp_attn_scale')
      const runsFinalLayer = shard.isLast
      this.outIds = runsFinalLayer ? g.input(GGML_TYPE.I32, [this.nOut], 'out_ids') : undefined
      const c: LayerContext = {
        g, hp, w: (name) => shard.weights.get(name), nTokens: n, nKv: this.nKv, kvCells: kv.cells, nCtxSeq: this.nCtxSeq, flashAttention: this.flash,
        pos: this.pos, kIdxs: attn.kIdxs, vIdxs: attn.vIdxs, mask: attn.mask, ...(attn.segments !== undefined ? { segments: attn.segments } : {}), outIds: this.outIds, attnScale: this.attnScale,
        kCache: (il) => kv.kCache(il), vCache: (il) => kv.vCache(il)
      }
      // sliding-window layers attend over their own cache, with their own rows and mask
      const cSwa: LayerContext | undefined = this.swa === undefined
        ? undefined
        : { ...c, nKv: this.nKvSwa, kvCells: kv.swaCells, kIdxs: this.swa.kIdxs, vIdxs: this.swa.vIdxs, mask: this.swa.mask, segments: this.swa.segments }
      // (nEmbd, n) f32
      let cur = this.kind === 'tokens' ? g.getRows(shard.weights.get('token_embd.weight')!, this.inp) : this.inp
      if (this.kind === 'tokens' && arch.buildInput !== undefined) cur = arch.buildInput(c, cur)
      for (let il = shard.range.start; il < shard.range.end; il++) {
        g.layer = il
        cur = arch.buildLayer(layerWindow(hp, il) > 0 ? cSwa! : c, il, cur)
      }
      g.layer = -1
      if (shard.isLast) cur = arch.buildOutput(c, cur)
      this.out = g.output(cur)
      g.expand(cur)
      this.outWidth = shard.isLast ? hp.nVocab : hp.nEmbd
      // llama.cpp's graph callback: with few tokens or a full offload, each layer's norms run on the layer's device
      const gpu = shard.gpu
      const pins = gpu !== undefined && (n < 32 || gpu.placement.fullOffload)
        ? g.norms.map(({ t, il }) => ({ t, gpu: onDevice(gpu.placement, il, hp.nLayers) }))
        : []
      kv.allocator.alloc(g.graph, pins, g.maxNodes)
    } catch (err) {
      g.free()
      throw err
    }
  }

  /**
   * @param input token ids (n) or hidden state (n, nEmbd) f32 of the batch, segment after segment
   * @param segs the sequences' tokens in the batch, in order (batch-inputs.ts)
   * @param b their positions, cells and output rows (`batchInputs(segs)`; b.nKv / b.nKvSwa / outIds match this graph's key)
   */
  setInputs (input: { kind: 'tokens', tokens: Int32Array } | { kind: 'hidden', hidden: Float32Array }, segs: readonly BatchSegment[], b: BatchInputs): void {
    const n = this.nTokens
    if (b.nTokens !== n || (this.outIds !== undefined && b.outIds.length !== this.nOut)) throw new Error('internal: batch inputs do not match the graph')
    tensorSet(this.inp, input.kind === 'tokens' ? input.tokens : input.hidden)
    tensorSet(this.pos, b.pos)
    const temp = this.shard.description.hparams.attnTemperature
    if (this.attnScale !== undefined && temp !== undefined) tensorSet(this.attnScale, attnTemperatures(b.pos, temp))
    if (this.base !== undefined) {
      const kIdx = i64Pairs(b.cells)
      tensorSet(this.base.kIdxs, kIdx)
      if (this.nEmbdKv === 0) {
        // no V cache in this shard
      } else if (this.flash) {
        tensorSet(this.base.vIdxs, kIdx)
      } else {
        tensorSet(this.base.vIdxs, this.transposedVIdxs(b.cells, this.kvCells))
      }
      if (tensorHasBuffer(this.base.mask)) tensorSet(this.base.mask, batchBaseMask(segs, this.nKv, this.flash))
      this.base.segments?.forEach((sg, i) => { if (tensorHasBuffer(sg.mask)) tensorSet(sg.mask, segmentBaseMask(segs[i]!, sg, this.flash)) })
    }
    if (this.swa !== undefined) {
      if (b.swaCells === undefined) throw new Error('internal: sliding-window cells missing for a shard with sliding-window layers')
      const hp = this.shard.description.hparams
      const sIdx = i64Pairs(b.swaCells)
      tensorSet(this.swa.kIdxs, sIdx)
      if (this.nEmbdKv !== 0) tensorSet(this.swa.vIdxs, this.flash ? sIdx : this.transposedVIdxs(b.swaCells, this.kv.swaCells))
      const [nSwa, type] = [swaWindowOf(hp)!, hp.swaType ?? 'standard'] as const
      if (tensorHasBuffer(this.swa.mask)) tensorSet(this.swa.mask, batchSwaMask(segs, this.nKvSwa, this.flash, nSwa, type))
      this.swa.segments?.forEach((sg, i) => { if (tensorHasBuffer(sg.mask)) tensorSet(sg.mask, segmentSwaMask(segs[i]!, sg, this.flash, nSwa, type)) })
    }
    if (this.outIds !== undefined) tensorSet(this.outIds, b.outIds)
  }

  /** transposed V: element j of token i goes to j * cells + cell_i (i64 as (low, 0) i32 pairs) */
  private transposedVIdxs (cellOf: ArrayLike<number>, cells: number): Int32Array {
    const e = this.nEmbdKv
    const n = cellOf.length
    const vIdx = new Int32Array(2 * n * e)
    for (let i = 0; i < n; i++) for (let j = 0; j < e; j++) vIdx[2 * (i * e + j)] = j * cells + cellOf[i]!
    return vIdx
  }

  async compute (): Promise<void> { await this.kv.allocator.compute(this.g.graph) }

  /**
   * (rows, width) f32: hidden (n, nEmbd) or logits (nOut, nVocab) — in a new array, or at the start of the one
   * `into` returns for the values needed (a buffer the caller reuses; at least that long).
   */
  readOutput (into?: (values: number) => Float32Array): Float32Array {
    const rows = this.shard.isLast ? this.nOut : this.nTokens
    const out = into !== undefined ? into(rows * this.outWidth).subarray(0, rows * this.outWidth) : new Float32Array(rows * this.outWidth)
    tensorGet(this.out, out)
    return out
  }

  free (): void {
    this.kv.allocator.forget(this.g.graph)
    this.g.free()
  }
}

/** i64 indices as (low, high = 0) i32 pairs: cells < 2^31, little-endian host */
function i64Pairs (v: Int32Array): Int32Array {
  const out = new Int32Array(2 * v.length)
  for (let i = 0; i < v.length; i++) out[2 * i] = v[i]!
  return out
}
