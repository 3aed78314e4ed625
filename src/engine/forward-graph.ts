import { layerKvWidths } from './arch/arch-spec.js'
import { GraphBuilder } from './native/graph-builder.js'
import { GGML_TYPE, gallocrAlloc, graphCompute, tensorGet, tensorSet } from './native/ggml.js'
import type { LayerContext } from './arch/arch-spec.js'
import type { ShardRuntime } from './shard-runtime.js'
import type { Ptr, Tensor } from './native/ggml.js'

export interface GraphKey { nTokens: number, nKv: number, nOut: number, kind: 'tokens' | 'hidden' }

export interface KvCacheView {
  kCache: (il: number) => Tensor
  vCache: (il: number) => Tensor
  readonly cells: number
  readonly gallocr: Ptr
}

const F16_ZERO = 0x0000
const F16_NEG_INF = 0xfc00

/** One forward graph of a shard for a fixed key; inputs are re-set for every call. */
export class ForwardGraph implements GraphKey {
  readonly nTokens: number
  readonly nKv: number
  readonly nOut: number
  readonly kind: 'tokens' | 'hidden'
  private readonly g: GraphBuilder
  private readonly inp: Tensor
  private readonly pos: Tensor
  private readonly kIdxs: Tensor
  private readonly vIdxs: Tensor
  private readonly mask: Tensor
  private readonly outIds: Tensor | undefined
  private readonly out: Tensor
  private readonly outWidth: number
  private readonly flash: boolean
  private readonly nEmbdKv: number
  private readonly kvCells: number

  constructor (private readonly shard: ShardRuntime, private readonly kv: KvCacheView, key: GraphKey) {
    ({ nTokens: this.nTokens, nKv: this.nKv, nOut: this.nOut, kind: this.kind } = key)
    const hp = shard.description.hparams
    const arch = shard.description.arch
    const n = this.nTokens
    this.flash = shard.options.flashAttention === true
    this.kvCells = kv.cells
    const nOwned = shard.range.end - shard.range.start
    // V row width of the (transposed) V cache; 0 when no owned layer keeps a V cache (MLA: V is a view of K)
    this.nEmbdKv = Math.max(0, ...Array.from({ length: nOwned }, (_, i) => layerKvWidths(arch, hp, shard.range.start + i).v))
    this.g = new GraphBuilder(Math.max(2048, (arch.nodesPerLayer?.(hp) ?? 64) * nOwned + 256))
    const g = this.g
    try {
      this.inp = this.kind === 'tokens' ? g.input(GGML_TYPE.I32, [n], 'inp_tokens') : g.input(GGML_TYPE.F32, [hp.nEmbd, n], 'inp_embd')
      this.pos = g.input(GGML_TYPE.I32, [n], 'inp_pos')
      this.kIdxs = g.input(GGML_TYPE.I64, [n], 'attn_inp_k_idxs')
      // without V caches this input stays out of the graph (never allocated, never set)
      this.vIdxs = g.input(GGML_TYPE.I64, [this.flash || this.nEmbdKv === 0 ? n : n * this.nEmbdKv], 'attn_inp_v_idxs')
      this.mask = g.input(this.flash ? GGML_TYPE.F16 : GGML_TYPE.F32, [this.nKv, n, 1, 1], 'attn_inp_kq_mask')
      const runsFinalLayer = shard.isLast
      this.outIds = runsFinalLayer ? g.input(GGML_TYPE.I32, [this.nOut], 'out_ids') : undefined
      const c: LayerContext = {
        g, hp, w: (name) => shard.weights.get(name), nTokens: n, nKv: this.nKv, kvCells: kv.cells, flashAttention: this.flash,
        pos: this.pos, kIdxs: this.kIdxs, vIdxs: this.vIdxs, mask: this.mask, outIds: this.outIds,
        kCache: (il) => kv.kCache(il), vCache: (il) => kv.vCache(il)
      }
      // (nEmbd, n) f32
      let cur = this.kind === 'tokens' ? g.getRows(shard.weights.get('token_embd.weight')!, this.inp) : this.inp
      for (let il = shard.range.start; il < shard.range.end; il++) cur = arch.buildLayer(c, il, cur)
      if (shard.isLast) cur = arch.buildOutput(c, cur)
      this.out = g.output(cur)
      g.expand(cur)
      this.outWidth = shard.isLast ? hp.nVocab : hp.nEmbd
      gallocrAlloc(kv.gallocr, g.graph)
    } catch (err) {
      g.free()
      throw err
    }
  }

  /**
   * @param input token ids (n) or hidden state (n, nEmbd) f32 of this chunk
   * @param pos0 position of the first token (= its KV cell)
   * @param outRow the single row whose output is kept (undefined = all rows)
   */
  setInputs (input: { kind: 'tokens', tokens: Int32Array } | { kind: 'hidden', hidden: Float32Array }, pos0: number, outRow?: number): void {
    const n = this.nTokens
    tensorSet(this.inp, input.kind === 'tokens' ? input.tokens : input.hidden)
    const pos = new Int32Array(n)
    // i64 indices written as (low, high = 0) i32 pairs: cells < 2^31, little-endian host
    const kIdx = new Int32Array(2 * n)
    for (let i = 0; i < n; i++) { pos[i] = pos0 + i; kIdx[2 * i] = pos0 + i }
    tensorSet(this.pos, pos)
    tensorSet(this.kIdxs, kIdx)
    if (this.nEmbdKv === 0) {
      // no V cache in this shard
    } else if (this.flash) {
      tensorSet(this.vIdxs, kIdx)
    } else {
      // transposed V: element j of token i goes to j * kvCells + cell_i
      const e = this.nEmbdKv
      const vIdx = new Int32Array(2 * n * e)
      for (let i = 0; i < n; i++) for (let j = 0; j < e; j++) vIdx[2 * (i * e + j)] = j * this.kvCells + pos0 + i
      tensorSet(this.vIdxs, vIdx)
    }
    // causal mask (nKv, n): cell j visible to token i iff j <= pos0 + i
    const nKv = this.nKv
    if (this.flash) {
      const m = new Uint16Array(nKv * n)
      for (let i = 0; i < n; i++) { const p = pos0 + i; m.fill(F16_ZERO, i * nKv, i * nKv + p + 1); m.fill(F16_NEG_INF, i * nKv + p + 1, (i + 1) * nKv) }
      tensorSet(this.mask, m)
    } else {
      const m = new Float32Array(nKv * n)
      for (let i = 0; i < n; i++) { const p = pos0 + i; m.fill(-Infinity, i * nKv + p + 1, (i + 1) * nKv) }
      tensorSet(this.mask, m)
    }
    if (this.outIds !== undefined) {
      const ids = new Int32Array(this.nOut)
      if (outRow !== undefined) ids[0] = outRow
      else for (let i = 0; i < this.nOut; i++) ids[i] = i
      tensorSet(this.outIds, ids)
    }
  }

  async compute (): Promise<void> { await graphCompute(this.shard.backend, this.g.graph) }

  /** (rows, width) f32: hidden (n, nEmbd) or logits (nOut, nVocab) */
  readOutput (): Float32Array {
    const rows = this.shard.isLast ? this.nOut : this.nTokens
    const out = new Float32Array(rows * this.outWidth)
    tensorGet(this.out, out)
    return out
  }

  free (): void { this.g.free() }
}
