import { AbortedError, DisposedError } from '../shared/errors/exo-error.js'
import { KvStoreBrokenError } from '../shared/errors/engine-errors.js'
import { batchInputs } from './batch-inputs.js'
import { DECODE_MAX, UBATCH, planStep } from './batch-step.js'
import { StepGroups } from './step-groups.js'
import { stepInput } from './step-input.js'
import { ForwardGraph, spansKey } from './forward-graph.js'
import { GraphCache } from './graph-cache.js'
import { KvStore } from './kv-store.js'
import { KvCompactor } from './kv-compactor.js'
import { ComputeReserve } from './compute-reserve.js'
import { PAGE, paddedKv } from './kv-pages.js'
import type { BatchSegment } from './batch-inputs.js'
import type { GraphKey, GraphSpans } from './forward-graph.js'
import type { PagePool, SeqPages } from './kv-pages.js'
import type { ShardRuntime } from './shard-runtime.js'
import type { SwaCells, SwaCellsState } from './swa-cells.js'
import type { ForwardInput, ForwardOutput } from './types.js'
import type { GraphAllocator } from './graph-allocator.js'
import type { KvCompactionStats } from './kv-compactor.js'

/** What the scheduler reads and advances of a sequence (ShardSessionImpl). */
export interface BatchSequence {
  /** tokens in the cache */
  pos: number
  /** position after every forward already submitted */
  queuedEnd: number
  readonly disposed: boolean
  readonly pages: SeqPages
  readonly swa: SwaCells | undefined
  readonly swaPages: SeqPages | undefined
  readonly pipelineDepth: number
  readonly paddedContext: number
}

interface Job {
  seq: BatchSequence
  input: ForwardInput
  n: number
  mode: 'last' | 'all'
  /** ForwardOptions.borrowOutput */
  borrow: boolean
  signal: AbortSignal | undefined
  at: number // submitted (ms, performance.now)
  /** tokens evaluated so far */
  done: number
  /** the sequence's position and sliding-window ring before its first token was placed */
  start: number
  swaBefore: SwaCellsState | undefined
  /** output rows of the steps so far */
  outs: Float32Array[]
  resolve: (o: ForwardOutput) => void
  reject: (e: unknown) => void
}

/**
 * Continuous batching for one shard: forwards submitted by any of its sequences wait here; each step takes the
 * oldest pending forward of every sequence (planStep decides how many tokens each), places their tokens in the
 * shared KV store, evaluates ONE graph for all of them and hands every forward its rows. A forward joins at the
 * next step; one that is aborted, or whose sequence is disposed, leaves at the next step without touching the
 * others. Steps run one at a time on the shard's compute queue. In a pipeline, a step waits briefly for the rest of
 * its decoders' group (step-groups.ts), so the groups stay whole and the stages work on different ones at once.
 */
export class BatchScheduler {
  private pending: Job[] = []
  private running = false
  private store: KvStore | undefined
  /** a step's graph per key: a pipeline stage's groups alternate between theirs */
  private readonly graphs = new GraphCache(4)
  private readonly live = new Set<BatchSequence>()
  private readonly compactor: KvCompactor
  /** a failed move of KV pages: every later forward fails with it */
  private broken: KvStoreBrokenError | undefined
  private readonly groups = new StepGroups<BatchSequence>() // who left this shard in one step
  private disposed = false
  private readonly reserve = new ComputeReserve()
  /** the output rows of steps whose forwards all borrow theirs (ForwardOptions.borrowOutput) */
  private lent = new Float32Array(0)

  constructor (private readonly shard: ShardRuntime) { this.compactor = new KvCompactor(shard) }
  register (seq: BatchSequence): void { this.live.add(seq) }

  /** the compute buffers of the store's graphs (after the first forward) */
  get allocator (): GraphAllocator {
    if (this.store === undefined) throw new DisposedError('KV store')
    return this.store.allocator
  }

  /** bytes of the shared KV store (0 before the first forward) */
  get kvBytes (): number { return this.store?.bytes ?? 0 }

  /** pages moved to keep the computing sequences at the bottom of the store, and the store's cells */
  get kvStats (): KvCompactionStats & { cells: number } { return { ...this.compactor.stats, cells: this.store?.cells ?? 0 } }

  /** steps run, the forwards (one per sequence) they evaluated together, and the graphs built for them */
  readonly stepStats = { steps: 0, forwards: 0, graphs: 0 }

  submit (seq: BatchSequence, input: ForwardInput, n: number, mode: 'last' | 'all', signal: AbortSignal | undefined, borrow = false): Promise<ForwardOutput> {
    return new Promise((resolve, reject) => {
      if (this.disposed) { reject(new DisposedError('ShardSession')); return }
      this.pending.push({ seq, input, n, mode, borrow, signal, at: performance.now(), done: 0, start: seq.pos, swaBefore: undefined, outs: [], resolve, reject })
      this.groups.wake()
      if (!this.running) {
        this.running = true
        // forwards submitted in the same turn of the event loop (e.g. frames of one batch upstream) share a step
        setImmediate(() => { void this.loop() })
      }
    })
  }

  private async loop (): Promise<void> {
    try {
      while (this.pending.length > 0 && !this.disposed) {
        if (await this.groups.waitForGroup(this.live, this.pending.map((j) => ({ seq: j.seq, remaining: j.n - j.done, at: j.at })))) continue
        await this.shard.queue.run(async () => {
          // a step that fails outside its graph (e.g. memory for a larger store) fails every pending forward, never leaves them waiting
          try { await this.step() } catch (err) {
            if (err instanceof KvStoreBrokenError) this.broken = err
            for (const j of [...this.pending]) this.fail(j, err)
          }
        })
      }
    } finally {
      this.running = false
      if (this.disposed) for (const j of [...this.pending]) this.fail(j, new DisposedError('ShardSession'))
    }
  }

  private async step (): Promise<void> {
    if (this.broken !== undefined) throw this.broken
    for (const j of [...this.pending]) {
      if (j.seq.disposed) this.fail(j, new DisposedError('ShardSession'))
      else if (j.signal?.aborted === true) this.fail(j, abortError(j.signal))
    }
    // one forward per sequence per step, its oldest: a sequence's forwards run in the order submitted
    const heads = new Map<BatchSequence, Job>()
    for (const j of this.pending) if (!heads.has(j.seq)) heads.set(j.seq, j)
    const all = [...heads.values()]
    if (all.length === 0) return
    // sequences whose context changes the graph (ArchSpec.contextClass) share it only with their own kind
    const { arch, hparams } = this.shard.description
    const nCtxSeq = all[0]!.seq.paddedContext
    const cls = arch.contextClass
    const cands = cls === undefined ? all : all.filter((j) => cls(hparams, j.seq.paddedContext) === cls(hparams, nCtxSeq))
    const grouped = this.groups.active(this.live, new Set(heads.keys()), performance.now())
    const store = this.store ??= new KvStore(this.shard, { base: cands[0]!.seq.paddedContext, swa: cands[0]!.seq.swa?.size ?? 0 })
    // the sequences computing now or lately go to the bottom of the store, idle ones above them
    await this.compactor.compact(store, [...this.live], new Set(heads.keys()))
    // attention scores are (rows × cells): keep them within UBATCH rows over the largest sequence's own context (the compute-buffer budget)
    let maxContext = 0
    for (const s of this.live) maxContext = Math.max(maxContext, s.paddedContext)
    const cells = this.spanBound(store, cands.map((j) => j.seq))
    const maxRows = cells > maxContext ? Math.floor(UBATCH * maxContext / cells) : UBATCH
    const take = planStep(cands.map((j) => ({ remaining: j.n - j.done, pipelineDepth: j.seq.pipelineDepth })), grouped, maxRows)
    const chosen = cands.map((j, i) => ({ j, m: take[i]! })).filter((c) => c.m > 0)
    const t0 = performance.now()
    const { isLast } = this.shard
    const segs: BatchSegment[] = []
    for (const { j, m } of chosen) {
      const seq = j.seq
      if (j.done === 0) { j.start = seq.pos; j.swaBefore = seq.swa?.snapshot() }
      this.ensure(seq.pages, seq.pos + m, store, store.base, false)
      let swa: BatchSegment['swa']
      if (seq.swa !== undefined) {
        const slots = seq.swa.findSlot(m)
        if (slots === undefined) throw new Error(`internal: no ${m} free cells in the sliding-window ring of ${seq.swa.size} cells`)
        seq.swa.apply(slots, Array.from({ length: m }, (_, i) => seq.pos + i))
        this.ensure(seq.swaPages!, Math.max(...slots) + 1, store, store.swaPool!, true)
        swa = { slots, cellPos: seq.swa.cellPositions, pages: seq.swaPages! }
      }
      const final = j.done + m === j.n
      const outRows = !isLast || j.mode === 'all' ? range(m) : final ? [m - 1] : []
      segs.push({ pos0: seq.pos, n: m, pages: seq.pages, ...(swa !== undefined ? { swa } : {}), outRows })
    }
    const b = batchInputs(segs, this.shard.options.kvCompaction === false ? undefined : { base: store.cells, swa: store.swaCells })
    // a last shard computes at least one row (chunks whose logits nobody wants: their KV writes are what matters)
    const padded = isLast && b.outIds.length === 0
    if (padded) b.outIds = Int32Array.of(b.nTokens - 1)
    try {
      const spans: GraphSpans = { n: segs.map((s) => s.n), base: b.spans, swa: b.spansSwa }
      const g = this.graphFor({ nTokens: b.nTokens, nKv: b.nKv, nKvSwa: b.nKvSwa, nOut: isLast ? b.outIds.length : b.nTokens, nCtxSeq, spans: spansKey(spans) }, store, spans, maxContext)
      g.setInputs(stepInput(chosen.map(({ j, m }) => ({ input: j.input, from: j.done, m })), this.shard.isFirst, this.shard.description.hparams.nEmbd), segs, b)
      await g.compute()
      // every forward ends with this step and lends its output: the rows go to a buffer reused by later steps (no garbage per step)
      const rows = g.readOutput(chosen.every(({ j, m }) => j.borrow && j.done + m === j.n) ? (n) => this.lent.length >= n ? this.lent : (this.lent = new Float32Array(n)) : undefined)
      const width = isLast ? this.shard.description.hparams.nVocab : this.shard.description.hparams.nEmbd
      let r = 0
      chosen.forEach(({ j, m }, i) => {
        const k = padded ? 0 : segs[i]!.outRows.length
        if (k > 0) j.outs.push(rows.subarray(r * width, (r + k) * width))
        r += k
        j.done += m
        j.seq.pos += m
      })
      this.compactor.stepped(chosen.map(({ j }) => j.seq))
    } catch (err) {
      for (const { j } of chosen) this.fail(j, err)
      return
    }
    this.groups.record(chosen.map(({ j }) => j.seq), t0, performance.now(), chosen.every(({ j }) => j.n <= DECODE_MAX))
    this.stepStats.steps++
    this.stepStats.forwards += chosen.length
    for (const { j } of chosen) {
      if (j.seq.disposed) this.fail(j, new DisposedError('ShardSession'))
      else if (j.signal?.aborted === true) this.fail(j, abortError(j.signal))
      else if (j.done === j.n) this.finish(j)
    }
  }

  /**
   * Cells the step's graph can span at most: the base pages of `seqs` plus the new pages a step of UBATCH tokens
   * can take (each the lowest free page above its sequence's last), or the whole store when fewer are free.
   */
  private spanBound (store: KvStore, seqs: readonly BatchSequence[]): number {
    let top = -1
    for (const s of seqs) if (s.pages.pages.length > 0) top = Math.max(top, s.pages.pages[s.pages.pages.length - 1]!)
    const last = store.base.nthFreeAbove(top, Math.ceil(UBATCH / PAGE) + seqs.length)
    return last === undefined ? store.cells : Math.min(store.cells, paddedKv((last + 1) * PAGE))
  }

  /** Pages for local cells [0, cells) of `pages`, growing the store when no page above its last is free. */
  private ensure (pages: SeqPages, cells: number, store: KvStore, pool: PagePool, swa: boolean): void {
    while (!pages.ensure(cells, pool)) {
      const more = pool.pages + Math.ceil((cells - pages.cells) / PAGE)
      if (swa) store.grow(0, more)
      else store.grow(more, 0)
    }
  }

  /** The cached graph of this key (graph-cache.ts); a new one otherwise. */
  private graphFor (k: Omit<GraphKey, 'kind' | 'generation'>, store: KvStore, spans: GraphSpans, maxContext: number): ForwardGraph {
    const key: GraphKey = { ...k, kind: this.shard.isFirst ? 'tokens' : 'hidden', generation: store.generation }
    return this.graphs.get(key) ?? this.graphs.add(key, store.allocator, () => {
      this.reserve.ensure(this.shard, store, key, maxContext) // worst-case compute buffers before any graph over this store runs
      this.stepStats.graphs++
      return new ForwardGraph(this.shard, store, key, spans)
    })
  }

  private finish (j: Job): void {
    this.remove(j)
    // a forward of one step (every decode) keeps its rows where the step's output put them: no copy of its logits
    let out = j.outs[0] ?? new Float32Array(0)
    if (j.outs.length > 1) { out = new Float32Array(j.outs.reduce((a, o) => a + o.length, 0)); let o = 0; for (const x of j.outs) { out.set(x, o); o += x.length } }
    const nVocab = this.shard.description.hparams.nVocab
    j.resolve(this.shard.isLast ? { kind: 'logits', logits: out, nRows: out.length / nVocab } : { kind: 'hidden', hidden: out, nTokens: j.n })
  }

  /** The forward fails: its sequence goes back to where it was before it (the ones queued after it start from there). */
  private fail (j: Job, err: unknown): void {
    this.remove(j)
    if (j.done > 0 || j.swaBefore !== undefined) {
      j.seq.pos = j.start
      if (j.swaBefore !== undefined) j.seq.swa!.restore(j.swaBefore)
    }
    j.seq.queuedEnd = j.seq.pos + this.pending.filter((p) => p.seq === j.seq).reduce((a, p) => a + p.n - p.done, 0)
    j.reject(err)
  }

  private remove (j: Job): void {
    const i = this.pending.indexOf(j)
    if (i >= 0) this.pending.splice(i, 1)
  }

  /** After truncate: pages past the sequence's position go back to the store. */
  shrink (seq: BatchSequence): void { if (this.store !== undefined) seq.pages.shrink(seq.pos, this.store.base) }

  /** A disposed sequence's pages go back to the store (its pending forwards fail at the next step). */
  release (seq: BatchSequence): void {
    this.live.delete(seq)
    this.compactor.forget(seq)
    this.groups.forget(seq)
    if (this.store === undefined) return
    seq.pages.release(this.store.base)
    if (seq.swaPages !== undefined) seq.swaPages.release(this.store.swaPool!)
  }

  /** No step starts after this; pending forwards fail. */
  stop (): void {
    this.disposed = true
    this.groups.wake()
    for (const j of [...this.pending]) this.fail(j, new DisposedError('ShardSession'))
  }

  /** Frees the store and the graph; call after stop(), once the shard's queue is idle. */
  dispose (): void {
    this.stop()
    this.graphs.clear()
    this.store?.dispose()
    this.store = undefined
  }
}

function range (n: number): number[] { return Array.from({ length: n }, (_, i) => i) }

function abortError (signal: AbortSignal): Error { return new AbortedError('operation aborted', { cause: signal.reason }) }
