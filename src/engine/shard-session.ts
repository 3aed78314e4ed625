import { DisposedError, throwIfAborted } from '../shared/errors/exo-error.js'
import { ContextOverflowError, InvalidEngineOptionError, InvalidForwardInputError, NativeCallError, SlidingWindowHistoryError } from '../shared/errors/engine-errors.js'
import { layerKvWidths } from './arch/arch-spec.js'
import { KV_PAD, SwaCells, layerWindow, swaCacheCells, swaWindowOf } from './swa-cells.js'
import { allocContextTensors, clearBuffer, cpuDevice, deviceBufferType, freeBuffer, freeContext, ggml, newContext, newTensor, GGML_TYPE } from './native/ggml.js'
import { ForwardGraph, graphNodeBound } from './forward-graph.js'
import { newGraphAllocator } from './graph-allocator.js'
import { onDevice } from './shard-placement.js'
import type { GraphAllocator } from './graph-allocator.js'
import type { ShardRuntime } from './shard-runtime.js'
import type { Ptr, Tensor } from './native/ggml.js'
import type { ForwardInput, ForwardOptions, ForwardOutput, SessionOptions, ShardSession } from './types.js'

/** Tokens per graph (llama.cpp's default n_ubatch; node-llama-cpp evaluates prompts in batches of this size). */
export const UBATCH = 512
const MAX_CONTEXT = 1 << 20
/** cap on the f32 values one forward may return (1 GiB) */
const MAX_OUTPUT_VALUES = 1 << 28

export class ShardSessionImpl implements ShardSession {
  readonly contextSize: number
  private pos = 0
  private disposed = false
  private readonly kvCells: number
  /** the sliding-window cache's cells (undefined when this shard owns no sliding-window layer) */
  private readonly swa: SwaCells | undefined
  private readonly kvCtx: Ptr
  private readonly kvBuf: Ptr
  private readonly kCaches: Tensor[] = []
  private readonly vCaches: Array<Tensor | undefined> = []
  private graph: ForwardGraph | undefined
  /** compute buffers (gallocr, or the scheduler on a shard with a GPU device), reused by every graph of this session */
  readonly allocator: GraphAllocator
  /** the device part of the KV cache (layers on the GPU), if any */
  private readonly kvGpu: { ctx: Ptr, buf: Ptr } | undefined

  constructor (private readonly shard: ShardRuntime, options: SessionOptions, private readonly onDispose: () => void) {
    const cs = options.contextSize
    if (!Number.isInteger(cs) || cs < 1 || cs > MAX_CONTEXT) throw new InvalidEngineOptionError(`contextSize must be an integer in [1, ${MAX_CONTEXT}], got ${cs}`)
    this.contextSize = cs
    this.kvCells = Math.ceil(cs / KV_PAD) * KV_PAD
    const { arch, hparams: hp } = shard.description
    const nOwned = shard.range.end - shard.range.start
    const widths = Array.from({ length: nOwned }, (_, i) => layerKvWidths(arch, hp, shard.range.start + i))
    // a transposed V cache (no flash attention) has the widest V width in every layer, as llama.cpp's
    const vMax = Math.max(0, ...widths.map((w) => w.v))
    // sliding-window layers share one cache bounded by the window (llama.cpp's iSWA cache, swa_full = false)
    const nSwa = swaWindowOf(hp, shard.range.start, shard.range.end)
    this.swa = nSwa === undefined ? undefined : new SwaCells(swaCacheCells(this.kvCells, cs, nSwa, UBATCH), nSwa, hp.swaType ?? 'standard')
    cpuDevice()
    // each layer's cache on its layer's device (llama.cpp's kv cache with offload_kqv): one context per device
    const gpu = shard.gpu
    const onGpu = (il: number): boolean => gpu !== undefined && onDevice(gpu.placement, il, hp.nLayers)
    const nGpu = Array.from({ length: nOwned }, (_, i) => onGpu(shard.range.start + i)).filter(Boolean).length
    this.kvCtx = newContext(2 * nOwned)
    const gpuCtx = nGpu > 0 ? newContext(2 * nGpu) : undefined
    for (let i = 0; i < nOwned; i++) {
      const il = shard.range.start + i
      const { k, v } = widths[i]!
      const cells = layerWindow(hp, il) > 0 ? this.swa!.size : this.kvCells
      const ctx = onGpu(il) ? gpuCtx! : this.kvCtx
      this.kCaches.push(newTensor(ctx, GGML_TYPE.F16, [k, cells], `cache_k_l${il}`))
      this.vCaches.push(v === 0 ? undefined : newTensor(ctx, GGML_TYPE.F16, [shard.options.flashAttention === true ? v : vMax, cells], `cache_v_l${il}`))
    }
    const l = ggml()
    // every layer on the device: the CPU context holds no tensor and gets no buffer
    this.kvBuf = nGpu === nOwned ? 0n : allocContextTensors(this.kvCtx, l.ggml_backend_dev_buffer_type(cpuDevice()) as Ptr, false)
    // masked cells still enter the attention products (×0): they must hold finite values
    if (this.kvBuf !== 0n) clearBuffer(this.kvBuf, 0)
    if (gpuCtx !== undefined) {
      const buf = allocContextTensors(gpuCtx, deviceBufferType(gpu!.dev), false)
      clearBuffer(buf, 0)
      this.kvGpu = { ctx: gpuCtx, buf }
    }
    this.allocator = newGraphAllocator(shard, graphNodeBound(shard))
  }

  get position (): number { return this.pos }

  kCache (il: number): Tensor { return this.kCaches[il - this.shard.range.start]! }
  vCache (il: number): Tensor {
    const v = this.vCaches[il - this.shard.range.start]
    if (v === undefined) throw new NativeCallError(`layer ${il} has no V cache (its V is a view of K); the graph builder must not read it`)
    return v
  }
  get cells (): number { return this.kvCells }
  get swaCells (): number { return this.swa?.size ?? 0 }

  private validate (input: ForwardInput): number {
    const { shard } = this
    const hp = shard.description.hparams
    if (shard.isFirst) {
      if (input.kind !== 'tokens') throw new InvalidForwardInputError(`the first shard takes token ids, got '${input.kind}'`)
      if (!(input.tokens instanceof Int32Array)) throw new InvalidForwardInputError('tokens must be an Int32Array')
      for (let i = 0; i < input.tokens.length; i++) {
        const t = input.tokens[i]!
        if (t < 0 || t >= hp.nVocab) throw new InvalidForwardInputError(`token id ${t} at index ${i} is outside the vocabulary [0, ${hp.nVocab})`)
      }
      return input.tokens.length
    }
    if (input.kind !== 'hidden') throw new InvalidForwardInputError(`a shard starting at layer ${shard.range.start} takes a hidden state, got '${input.kind}'`)
    if (!(input.hidden instanceof Float32Array)) throw new InvalidForwardInputError('hidden must be a Float32Array')
    if (!Number.isInteger(input.nTokens) || input.nTokens < 0) throw new InvalidForwardInputError(`nTokens ${input.nTokens} is not a non-negative integer`)
    if (input.hidden.length !== input.nTokens * hp.nEmbd) {
      throw new InvalidForwardInputError(`hidden has ${input.hidden.length} values, expected nTokens ${input.nTokens} × nEmbd ${hp.nEmbd} = ${input.nTokens * hp.nEmbd}`)
    }
    return input.nTokens
  }

  async forward (input: ForwardInput, options: ForwardOptions = {}): Promise<ForwardOutput> {
    if (this.disposed) throw new DisposedError('ShardSession')
    throwIfAborted(options.signal)
    const n = this.validate(input)
    if (n < 1) throw new InvalidForwardInputError('a forward pass needs at least one token')
    const mode = options.logits ?? 'last'
    if (mode !== 'last' && mode !== 'all') throw new InvalidForwardInputError(`logits must be 'last' or 'all', got '${String(mode)}'`)
    if (this.pos + n > this.contextSize) throw new ContextOverflowError(this.pos, n, this.contextSize)
    const hp = this.shard.description.hparams
    const { isLast } = this.shard
    if (isLast && mode === 'all' && n * hp.nVocab > MAX_OUTPUT_VALUES) {
      throw new InvalidForwardInputError(`logits 'all' for ${n} tokens × ${hp.nVocab} would exceed ${MAX_OUTPUT_VALUES} values; evaluate fewer tokens per call`)
    }
    return await this.shard.queue.run(async () => {
      if (this.disposed) throw new DisposedError('ShardSession')
      // forwards of one session queued back to back: each starts where the previous one ended
      const start = this.pos
      if (start + n > this.contextSize) throw new ContextOverflowError(start, n, this.contextSize)
      const outWidth = isLast ? hp.nVocab : hp.nEmbd
      const outRows = isLast ? (mode === 'all' ? n : 1) : n
      const out = new Float32Array(outRows * outWidth)
      let written = 0
      const swaBefore = this.swa?.snapshot()
      try {
        for (let off = 0; off < n; off += UBATCH) {
          throwIfAborted(options.signal)
          const m = Math.min(UBATCH, n - off)
          const isFinalChunk = off + m === n
          // chunks whose logits are not wanted still compute one row (their KV writes are what matters)
          const nOut = isLast ? (mode === 'all' ? m : 1) : m
          const slots = this.placeSwa(m)
          const g = this.graphFor(m, nOut, input.kind)
          const chunk = input.kind === 'tokens'
            ? { kind: 'tokens' as const, tokens: input.tokens.subarray(off, off + m) }
            : { kind: 'hidden' as const, hidden: input.hidden.subarray(off * hp.nEmbd, (off + m) * hp.nEmbd) }
          g.setInputs(chunk, this.pos, nOut === m ? undefined : m - 1, slots)
          await g.compute()
          if (this.disposed) throw new DisposedError('ShardSession')
          this.pos += m
          if (!isLast || mode === 'all' || isFinalChunk) {
            const rows = g.readOutput()
            out.set(rows, written)
            written += rows.length
          }
        }
      } catch (err) {
        this.pos = start
        if (swaBefore !== undefined) this.swa!.restore(swaBefore)
        throw err
      }
      return isLast ? { kind: 'logits', logits: out, nRows: outRows } : { kind: 'hidden', hidden: out, nTokens: n }
    })
  }

  /** Places the next n tokens (positions pos…pos+n-1) in the sliding-window cache, as llama.cpp's find_slot + apply_ubatch. */
  private placeSwa (n: number): { idxs: number[], cellPos: Int32Array } | undefined {
    const swa = this.swa
    if (swa === undefined) return undefined
    const idxs = swa.findSlot(n)
    if (idxs === undefined) throw new Error(`internal: no ${n} free cells in the sliding-window cache of ${swa.size} cells`)
    swa.apply(idxs, Array.from({ length: n }, (_, i) => this.pos + i))
    return { idxs, cellPos: swa.cellPositions }
  }

  /** The cached graph when (nTokens, padded KV lengths, outputs, input kind) are unchanged; a new one otherwise. */
  private graphFor (nTokens: number, nOut: number, kind: ForwardInput['kind']): ForwardGraph {
    const used = this.pos + nTokens
    const nKv = Math.min(this.kvCells, Math.max(KV_PAD, Math.ceil(used / KV_PAD) * KV_PAD))
    const nKvSwa = this.swa?.nKv() ?? 0
    const g = this.graph
    if (g !== undefined && g.nTokens === nTokens && g.nKv === nKv && g.nKvSwa === nKvSwa && g.nOut === nOut && g.kind === kind) return g
    g?.free()
    this.graph = undefined
    this.graph = new ForwardGraph(this.shard, this, { nTokens, nKv, nKvSwa, nOut, kind })
    return this.graph
  }

  truncate (position: number): void {
    if (this.disposed) throw new DisposedError('ShardSession')
    if (!Number.isInteger(position) || position < 0 || position > this.pos) {
      throw new InvalidForwardInputError(`truncate position ${position} is not an integer in [0, ${this.pos}]`)
    }
    const swa = this.swa
    if (swa !== undefined) {
      // the next token at `position` attends to the window before it: those cells must not have been reused
      const need = Math.max(0, position - swa.nSwa + 1)
      const min = swa.posMin()
      if (position > 0 && (min < 0 || min > need)) throw new SlidingWindowHistoryError(position, min)
      swa.seqRm(position, Number.MAX_SAFE_INTEGER)
    }
    // cells at positions >= position become invisible (the mask hides them) and are overwritten later
    this.pos = position
  }

  dispose (): void {
    if (this.disposed) return
    this.disposed = true
    this.onDispose()
    void this.shard.queue.run(async () => {
      this.graph?.free()
      this.graph = undefined
      this.allocator.free()
      if (this.kvBuf !== 0n) freeBuffer(this.kvBuf)
      freeContext(this.kvCtx)
      if (this.kvGpu !== undefined) {
        freeBuffer(this.kvGpu.buf)
        freeContext(this.kvGpu.ctx)
      }
    })
  }
}
