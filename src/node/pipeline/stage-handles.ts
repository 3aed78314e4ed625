import { createLogger } from '../../shared/log.js'
import type { ModelId } from '../../shared/ids.js'
import type { Plan } from '../../planner/index.js'
import type { LoadedShard, ModelMetadata } from '../../engine/types.js'
import type { OpenFrame } from '../../protocols/activations/index.js'
import type { ShardEngine } from '../shard-engine.js'
import { ReturnHops } from './return-hops.js'
import { StageRunner } from './stage-runner.js'
import type { HopChannel } from './stage-runner.js'
import { createStageSampler } from './stage-sampler.js'
import { stageOf } from './plan-agreement-core.js'
import { nodeGpuLayers } from '../gpu-offload.js'
import type { GpuOffload } from '../gpu-offload.js'
import { StageRetention } from './stage-retention.js'
import { sessionChainCache, sessionKvBytes, sumPrefixStats } from '../prefix-reuse.js'
import type { PrefixTotals } from '../prefix-reuse.js'
import { DEFAULT_SEQUENCES, maxSequencesFor } from '../admission-gate.js'
import type { PrefixCache } from '../prefix-cache.js'
import type { ShardSession } from '../../engine/types.js'

/** Sessions a later stage always admits without --max-sequences (its fixed limit before limits came from memory). */
const STAGE_SESSIONS_FLOOR = 16

const log = createLogger('node:stages')

export interface ServedModel {
  id: ModelId
  path: string
  metadata: ModelMetadata
}

/** This node's stage of one plan: its shard and the port that serves the plan's hops. */
export interface StageHandle {
  readonly plan: Plan
  readonly index: number
  readonly start: number
  readonly end: number
  shard: LoadedShard | undefined
  /** shard loaded and port created: the stage accepts this plan's streams */
  ready: boolean
  /** stages ≥ 1 */
  runner: StageRunner | undefined
  /** stage 0 of a multi-stage plan: where the last hop's RESULTs arrive */
  returnHops: ReturnHops | undefined
  /** stage 0: the retained KV of finished requests (prefix reuse) */
  prefix: PrefixCache<readonly ShardSession[]> | undefined
  /** stages ≥ 1: the retained KV their runner keeps */
  retention: StageRetention | undefined
  /** hops being served + requests being driven as first stage */
  inflight: number
  /** requests being driven as first stage (each holds a stage-0 KV cache) */
  leases: number
  /** when the plan stopped being wanted (ms, node clock) */
  unwantedSince: number | undefined
  released: boolean
}

export interface StageHandlesInit {
  model: ServedModel
  engine: ShardEngine
  threads: number
  flashAttention: boolean
  selfId: string
  dialNext: (peerId: string, open: OpenFrame, signal: AbortSignal) => Promise<HopChannel>
  onStageCompute?: (ms: number, tokens: number) => void
  /** a handle became ready or failed to load */
  onChange: () => void
  maxSessionsPerStage?: number
  /** cap on retained KV bytes (prefix reuse; 0 = none) below what the budget leaves */
  prefixCacheBytes?: number
  /** this node's memory budget: the ranges loaded at once never need more (undefined: no limit) */
  memoryBudgetBytes?: number
  /**
   * Runs before a range is loaded and must resolve only when every byte the range needs is on disk
   * and verified (peer fetch of a model this node lacks, src/node/peer-fetch/). Default: nothing.
   */
  prepareRange?: (range: { start: number, end: number }, signal: AbortSignal) => Promise<void>
  /** GPU offload: a stage runs its last `gpuLayers` (the plan's, else `--gpu-layers` for its range) on the device */
  gpu?: GpuOffload
}

/** `bytes` / `deviceBytes`: what the plan's stage needs for the range in host / device memory (planner memory model) */
interface ShardEntry { promise: Promise<LoadedShard>, users: number, bytes: number, deviceBytes: number }
/** Retained-KV cap of a node without a memory budget. */
const DEFAULT_RETAIN_BYTES = 256 * 2 ** 20

/**
 * The stages this node holds, one per plan id, sharing loaded layer ranges (a new plan that keeps
 * this node's range reuses the loaded shard). Loading is asynchronous; a handle becomes `ready` once
 * its shard and port exist. Releasing frees the port, and the shard when no other plan uses it.
 */
export class StageHandles {
  readonly handles = new Map<string, StageHandle>()
  private readonly shards = new Map<string, ShardEntry>()
  /** plan id → time before which a failed load is not retried */
  private readonly failedUntil = new Map<string, number>()

  constructor (private readonly init: StageHandlesInit) {}

  get loadedShards (): number { return this.shards.size }

  /** Bytes of the ranges loaded or loading (planner memory model). */
  get loadedBytes (): number {
    let n = 0
    for (const e of this.shards.values()) n += e.bytes
    return n
  }

  /** Device bytes of the ranges loaded or loading (their offloaded layers: plan stages' `deviceBytes`). */
  get loadedDeviceBytes (): number {
    let n = 0
    for (const e of this.shards.values()) n += e.deviceBytes
    return n
  }

  /**
   * Whether this node's stage of `plan` cannot be loaded next to the ranges held now without exceeding
   * the host memory budget or the device budget (`gpu.budgetBytes`; its range is not loaded yet). The
   * caller then releases the other ranges first.
   */
  blockedByMemory (plan: Plan): boolean {
    const budget = this.init.memoryBudgetBytes
    const device = this.init.gpu?.budgetBytes
    const st = stageOf(plan, this.init.selfId)
    if ((budget === undefined && device === undefined) || st === undefined || this.handles.has(plan.id) || this.shards.has(this.shardKey(plan, st))) return false
    const stage = plan.stages[st.index]!
    return (budget !== undefined && this.loadedBytes + stage.memoryBytes > budget) ||
      (device !== undefined && this.loadedDeviceBytes + (stage.deviceBytes ?? 0) > device)
  }

  /** KV-cache sessions held: stages ≥ 1 (one per request) and stage 0 (one per request driven here) */
  get activeSessions (): number {
    let n = 0
    for (const h of this.handles.values()) n += (h.runner?.activeSessions ?? 0) + h.leases
    return n
  }

  /**
   * Creates this node's stage of `plan` (loading its range) unless it exists. `now` = node clock ms.
   * Undefined when this node has no stage in it, a load failed recently, or the range does not fit
   * the memory budget next to the ranges held now (`blockedByMemory`).
   */
  ensure (plan: Plan, now: number): StageHandle | undefined {
    const existing = this.handles.get(plan.id)
    if (existing !== undefined) return existing
    const st = stageOf(plan, this.init.selfId)
    if (st === undefined || (this.failedUntil.get(plan.id) ?? 0) > now || this.blockedByMemory(plan)) return undefined
    const h: StageHandle = { plan, ...st, shard: undefined, ready: false, runner: undefined, returnHops: undefined, prefix: undefined, retention: undefined, inflight: 0, leases: 0, unwantedSince: undefined, released: false }
    this.handles.set(plan.id, h)
    const { model, engine, threads, flashAttention, gpu } = this.init
    const range = { start: st.start, end: st.end }
    const gpuLayers = this.gpuLayersOf(plan, st)
    const key = this.shardKey(plan, st)
    let entry = this.shards.get(key)
    if (entry === undefined) {
      log.info({ model: model.id, start: st.start, end: st.end, plan: plan.id.slice(0, 12), ...(gpu !== undefined ? { gpuLayers } : {}) }, 'loading layers')
      const prepare = this.init.prepareRange
      const promise = (prepare === undefined ? Promise.resolve() : prepare(range, AbortSignal.timeout(3_600_000)))
        .then(async () => await engine.loadShard({ modelPath: model.path, range, threads, flashAttention, ...(gpu !== undefined ? { gpuLayers } : {}) }, {}))
      entry = { promise, users: 0, bytes: plan.stages[st.index]!.memoryBytes, deviceBytes: plan.stages[st.index]!.deviceBytes ?? 0 }
      this.shards.set(key, entry)
      promise.catch(() => { if (this.shards.get(key) === entry) this.shards.delete(key) })
    }
    entry.users++
    entry.promise.then((shard) => {
      if (h.released) return
      h.shard = shard
      this.createPort(h, shard)
      h.ready = true
      log.info({ plan: plan.id.slice(0, 12), stage: h.index, start: h.start, end: h.end }, 'stage ready')
      this.init.onChange()
    }, (err: unknown) => {
      log.error({ err, plan: plan.id.slice(0, 12), start: st.start, end: st.end }, 'loading layers failed; retrying in 10 s')
      this.failedUntil.set(plan.id, now + 10_000)
      this.release(h)
      this.init.onChange()
    })
    return h
  }

  /** KV bytes of one session of `contextSize` cells on `h`'s layers */
  kvBytesOf (h: StageHandle, contextSize: number): number {
    return sessionKvBytes(this.init.model.metadata, contextSize, { start: h.start, end: h.end })
  }

  /**
   * Bytes retained KV may hold now: the memory budget less the loaded ranges (weights, compute and one
   * full-context KV each, the planner's model) and what running requests hold beyond that reserve.
   */
  retainBudgetBytes (): number {
    const budget = this.init.memoryBudgetBytes
    const cap = this.init.prefixCacheBytes ?? Number.POSITIVE_INFINITY
    if (budget === undefined) return Math.min(cap, DEFAULT_RETAIN_BYTES)
    let running = 0
    for (const h of this.handles.values()) {
      const full = this.kvBytesOf(h, this.init.model.metadata.contextLength)
      const active = h.runner?.activeKvBytes ?? h.leases * full
      running += Math.max(0, active - full)
    }
    return Math.min(cap, Math.max(0, budget - this.loadedBytes - running))
  }

  /**
   * Sequences this node can run at once: full-context KV caches of its widest stage that fit the budget beside
   * the loaded ranges, plus the one each range's planned bytes already hold; DEFAULT_SEQUENCES without a budget.
   */
  maxSequences (): number {
    const hs = [...this.handles.values()]
    if (this.init.memoryBudgetBytes === undefined || hs.length === 0) return DEFAULT_SEQUENCES
    return maxSequencesFor(this.kvCapacityBytes(), Math.max(...hs.map((h) => this.kvBytesOf(h, 256))))
  }

  /**
   * KV bytes this node's running sequences may hold: what the budget leaves beside the loaded ranges, plus the
   * full-context KV the planner counted in each range's bytes. No bound without a budget.
   */
  kvCapacityBytes (): number {
    const budget = this.init.memoryBudgetBytes
    if (budget === undefined) return Number.POSITIVE_INFINITY
    let reserved = 0
    for (const h of this.handles.values()) reserved += this.kvBytesOf(h, this.init.model.metadata.contextLength)
    return Math.max(0, budget - this.loadedBytes + reserved)
  }

  /** Retained-KV counters of every stage this node holds (/metrics). */
  prefixStats (): PrefixTotals {
    return sumPrefixStats([...this.handles.values()].flatMap((h) => [h.prefix, h.retention?.cache]))
  }

  private createPort (h: StageHandle, shard: LoadedShard): void {
    const n = h.plan.stages.length
    if (h.index === 0) h.prefix = sessionChainCache(() => this.retainBudgetBytes())
    if (n === 1) return
    if (h.index === 0) { h.returnHops = new ReturnHops(h.plan.id); return }
    const next = h.plan.stages[(h.index + 1) % n]!.peerId
    const modelPath = this.init.model.path
    h.runner = new StageRunner({
      planId: h.plan.id,
      stageIndex: h.index,
      nStages: n,
      shard,
      dialNext: async (open, signal) => await this.init.dialNext(next, open, signal),
      createSampler: async (open, signal) => await createStageSampler(open, modelPath, signal),
      retention: h.retention = new StageRetention(() => this.retainBudgetBytes()),
      kvBytes: (contextSize) => this.kvBytesOf(h, contextSize),
      // --max-sequences, else what the memory budget allows by count and KV bytes, but never fewer than 16: stage 0
      // queues its overflow, a later stage refuses it (429), so a tight budget must not refuse what it used to run
      maxSessions: this.init.maxSessionsPerStage ?? (() => Math.max(STAGE_SESSIONS_FLOOR, this.maxSequences())),
      kvCapacityBytes: () => this.init.maxSessionsPerStage === undefined && (h.runner?.activeSessions ?? 0) < STAGE_SESSIONS_FLOOR ? Number.POSITIVE_INFINITY : this.kvCapacityBytes(),
      ...(this.init.onStageCompute !== undefined ? { onComputeMs: this.init.onStageCompute } : {})
    })
  }

  /** No request in flight on this stage. */
  isIdle (h: StageHandle): boolean {
    return h.inflight === 0 && (h.runner?.activeSessions ?? 0) === 0 && (h.returnHops?.pending ?? 0) === 0
  }

  /** The plan's offload for this node's stage, else this node's own (`--gpu-layers` over the range). */
  private gpuLayersOf (plan: Plan, st: { index: number, start: number, end: number }): number {
    const { gpu, model, flashAttention } = this.init
    if (gpu === undefined) return 0
    const planned = plan.stages[st.index]?.gpuLayers
    return Math.min(planned ?? nodeGpuLayers(gpu, model.metadata, [st], model.metadata.contextLength, flashAttention), st.end - st.start)
  }

  /** Loaded shards are shared by plans with the same range and the same offload. */
  private shardKey (plan: Plan, st: { index: number, start: number, end: number }): string {
    return `${st.start}:${st.end}${this.init.gpu === undefined ? '' : `:gpu${this.gpuLayersOf(plan, st)}`}`
  }

  /** Drops the stage: refuses new streams, aborts what is left, frees the shard when no plan uses it. */
  release (h: StageHandle): void {
    if (h.released) return
    h.released = true
    h.ready = false
    h.runner?.dispose()
    h.prefix?.clear()
    if (this.handles.get(h.plan.id) === h) this.handles.delete(h.plan.id)
    const key = this.shardKey(h.plan, h)
    const entry = this.shards.get(key)
    if (entry === undefined) return
    entry.users--
    if (entry.users > 0) return
    this.shards.delete(key)
    entry.promise.then(async (shard) => {
      log.info({ start: h.start, end: h.end }, 'unloading layers')
      await shard.dispose()
    }, () => {})
  }

  async dispose (): Promise<void> {
    const shards = [...this.shards.values()].map((e) => e.promise)
    for (const h of [...this.handles.values()]) this.release(h)
    await Promise.allSettled(shards.map(async (p) => { await (await p).dispose() }))
  }
}
