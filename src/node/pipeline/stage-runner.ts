import { AbortedError, DisposedError } from '../../shared/errors/exo-error.js'
import { ActivationErrorCode, ActivationStageError, ProtocolDecodeError } from '../../shared/errors/protocol-errors.js'
import type { PlanId } from '../../shared/ids.js'
import type { LoadedShard, ShardSession } from '../../engine/types.js'
import type { ActivationsPort, OpenFrame, PayloadFrame } from '../../protocols/activations/index.js'
import type { StageRetention } from './stage-retention.js'

/** The part of an activation hop the runner uses (ActivationChannel satisfies it). */
export interface HopChannel {
  readonly open: OpenFrame
  next (options?: { signal?: AbortSignal, timeoutMs?: number }): Promise<PayloadFrame | undefined>
  send (frame: PayloadFrame, signal?: AbortSignal): Promise<void>
  close (): Promise<void>
  abort (err: Error): void
}

/** Last stage: turns one row of logits into a token id (engine sampling with the request's settings). */
export interface TokenSampler {
  /** @param logits (1, nVocab) f32 (may be modified: grammar masking) */
  sample (logits: Float32Array): number
  /** frees native state (grammar); called when the request ends */
  dispose?: () => void
}

export interface StageRunnerOptions {
  planId: PlanId
  /** this node's stage index, 1 … nStages − 1 (stage 0 drives the pipeline and is not a runner) */
  stageIndex: number
  nStages: number
  shard: Pick<LoadedShard, 'createSession' | 'metadata' | 'isLast'>
  /** Opens this request's hop to the next stage (the last stage: back to stage 0) and sends `open`. */
  dialNext: (open: OpenFrame, signal: AbortSignal) => Promise<HopChannel>
  /** Required on the last stage. */
  createSampler?: (open: OpenFrame, signal: AbortSignal) => TokenSampler | Promise<TokenSampler>
  /** Sessions this stage runs at once, re-read at every OPEN (the node derives it from its memory). Defaults to 16. */
  maxSessions?: number | (() => number)
  /**
   * KV bytes this stage's sessions may hold together, re-read at every OPEN: one whose session would not fit
   * beside the running ones is refused BUSY (one alone always runs), as the admission gate does on stage 0.
   * Default: no bound.
   */
  kvCapacityBytes?: () => number
  /** ms of each forward pass of this stage (metrics) */
  onComputeMs?: (ms: number, tokens: number) => void
  /** prefix reuse: sessions of requests that ended with END are retained here; OPEN's `prefix` takes them back */
  retention?: StageRetention
  /** KV bytes of one session of `contextSize` cells on this stage (memory accounting). Default 0. */
  kvBytes?: (contextSize: number) => number
}

/**
 * Serves inbound activation hops for ONE plan on a middle or last stage (protocols/activations.md):
 * refuses other plan ids and stage indices, runs each PREFILL/DECODE frame through this request's
 * own `ShardSession`, forwards hidden states (or, on the last stage, sampled tokens as RESULT to
 * stage 0), and frees the session on END, on abort of either hop, and on any failure. An ERROR from
 * downstream is relayed upstream with its code.
 */
export class StageRunner implements ActivationsPort {
  private readonly sessions = new Map<string, ShardSession>()
  private readonly disposed = new AbortController()
  private readonly maxSessions: () => number
  private kvInUse = 0

  constructor (private readonly options: StageRunnerOptions) {
    if (options.stageIndex < 1 || options.stageIndex >= options.nStages) throw new RangeError(`stage index ${options.stageIndex} not in [1, ${options.nStages})`)
    if (options.shard.isLast && options.createSampler === undefined) throw new RangeError('the last stage needs createSampler')
    const max = options.maxSessions ?? 16
    this.maxSessions = typeof max === 'number' ? () => max : max
  }

  get planId (): PlanId { return this.options.planId }
  /** requests whose KV cache this stage currently holds */
  get activeSessions (): number { return this.sessions.size }
  /** KV bytes the running requests' sessions hold */
  get activeKvBytes (): number { return this.kvInUse }

  async serve (open: OpenFrame, channel: HopChannel, context: { signal: AbortSignal }): Promise<void> {
    const o = this.options
    if (this.disposed.signal.aborted) throw new ActivationStageError(ActivationErrorCode.NotReady, `stage of plan ${o.planId.slice(0, 12)}… is shutting down`)
    if (open.planId !== o.planId) throw new ActivationStageError(ActivationErrorCode.PlanMismatch, `plan ${open.planId.slice(0, 12)}… is not held; this stage serves ${o.planId.slice(0, 12)}…`)
    if (open.toStage !== o.stageIndex) throw new ActivationStageError(ActivationErrorCode.StageMismatch, `OPEN for stage ${open.toStage}, this node is stage ${o.stageIndex}`)
    if (this.sessions.has(open.requestId)) throw new ActivationStageError(ActivationErrorCode.DuplicateRequest, `request ${open.requestId} already has a session`)
    const max = Math.max(1, Math.floor(this.maxSessions()))
    if (this.sessions.size >= max) throw new ActivationStageError(ActivationErrorCode.Busy, `${this.sessions.size} sessions open, the limit is ${max}`)
    const maxContext = o.shard.metadata.contextLength
    if (open.contextSize > maxContext) throw new ActivationStageError(ActivationErrorCode.ContextFull, `context ${open.contextSize} > the model's ${maxContext}`)
    // the session's KV estimate as below, before it exists: the retained prefix it keeps plus a chunk
    const want = o.kvBytes?.(Math.min(open.contextSize, (open.prefix?.keep ?? 0) + 256)) ?? 0
    const capacity = o.kvCapacityBytes?.() ?? Number.POSITIVE_INFINITY
    if (this.sessions.size > 0 && this.kvInUse + want > capacity) throw new ActivationStageError(ActivationErrorCode.Busy, `the running sessions hold ${this.kvInUse} KV bytes, ${want} more would exceed this stage's ${capacity}`)

    const create = (): ShardSession => o.shard.createSession({ contextSize: open.contextSize })
    if (open.prefix !== undefined && o.retention === undefined) throw new ActivationStageError(ActivationErrorCode.PrefixMissing, 'this stage retains no KV')
    const session = o.retention?.acquire(open, create) ?? create()
    // an estimate (pages are taken as the sequence grows): what it holds plus a chunk
    const kv = o.kvBytes?.(Math.min(session.contextSize, session.position + 256)) ?? 0
    this.kvInUse += kv
    // retained KV yields to running requests
    o.retention?.cache.trim()
    this.sessions.set(open.requestId, session)
    let ended = false
    const downstreamFailed = new AbortController()
    const signal = AbortSignal.any([context.signal, this.disposed.signal, downstreamFailed.signal])
    let next: HopChannel | undefined
    let over = false
    try {
      // the next hop is dialed while this stage computes the first frame (a dial takes ~20 ms on a busy mesh)
      const dialing = o.dialNext({ ...open, toStage: (o.stageIndex + 1) % o.nStages }, signal).then((c) => {
        next = c
        if (over) c.abort(new AbortedError(`request ${open.requestId} ended before its next hop was open`))
        else void this.watchDownstream(c, downstreamFailed)
        return c
      })
      dialing.catch((err: unknown) => { downstreamFailed.abort(err) })
      await this.pump(open, channel, session, dialing, signal)
      ended = true
    } catch (err) {
      over = true
      next?.abort(err instanceof Error ? err : new Error(String(err)))
      const reason: unknown = downstreamFailed.signal.aborted ? downstreamFailed.signal.reason : err
      if (reason instanceof ActivationStageError && reason.remote) {
        // relayed upstream; `cause` marks it as the downstream's refusal, not this stage's (refusal metrics)
        throw new ActivationStageError(reason.wireCode, `stage ${o.stageIndex + 1}: ${reason.message}`, false, { cause: reason })
      }
      if (this.disposed.signal.aborted && !context.signal.aborted) throw new ActivationStageError(ActivationErrorCode.NotReady, new DisposedError('stage runner').message)
      throw reason
    } finally {
      over = true
      this.kvInUse -= kv
      this.sessions.delete(open.requestId)
      if (o.retention !== undefined && open.retain === true && !this.disposed.signal.aborted) o.retention.release(open.requestId, session, ended, o.kvBytes?.(Math.max(1, session.position)) ?? 0)
      else session.dispose()
    }
  }

  private async pump (open: OpenFrame, channel: HopChannel, session: ShardSession, next: Promise<HopChannel>, signal: AbortSignal): Promise<void> {
    const { shard } = this.options
    const sampler = shard.isLast ? await this.options.createSampler!(open, signal) : undefined
    try {
      await this.pumpFrames(open, channel, session, next, signal, sampler)
    } finally {
      sampler?.dispose?.()
    }
  }

  private async pumpFrames (open: OpenFrame, channel: HopChannel, session: ShardSession, dialing: Promise<HopChannel>, signal: AbortSignal, sampler: TokenSampler | undefined): Promise<void> {
    const nEmbd = this.options.shard.metadata.nEmbd
    for (;;) {
      const f = await channel.next({ signal })
      if (f === undefined) throw new AbortedError(`upstream closed the stream of ${open.requestId} without END`)
      if (f.type === 'end') {
        const next = await dialing
        await next.send({ type: 'end', requestId: open.requestId, planId: open.planId }, signal)
        await next.close()
        return
      }
      if (f.type === 'result') throw new ProtocolDecodeError(`RESULT on the forward hop to stage ${this.options.stageIndex}`)
      if (f.nEmbd !== nEmbd) throw new ActivationStageError(ActivationErrorCode.ShapeMismatch, `hidden state has nEmbd ${f.nEmbd}, the model ${nEmbd}`)
      if (f.start !== session.position) throw new ActivationStageError(ActivationErrorCode.BadPosition, `frame starts at ${f.start}, the session is at ${session.position}`)
      if (f.start + f.count > open.contextSize) throw new ActivationStageError(ActivationErrorCode.ContextFull, `positions ${f.start}+${f.count} exceed the context of ${open.contextSize}`)
      // (count, nEmbd) f32 in
      const t0 = performance.now()
      // the last stage's logits are sampled before the event loop turns: they may be borrowed (no nVocab rows of garbage per step)
      const out = await session.forward({ kind: 'hidden', hidden: f.hidden, nTokens: f.count }, { signal, logits: 'last', pipelineDepth: this.options.nStages, borrowOutput: sampler !== undefined })
      this.options.onComputeMs?.(performance.now() - t0, f.count)
      if (sampler === undefined) {
        if (out.kind !== 'hidden') throw new ActivationStageError(ActivationErrorCode.Internal, 'a middle stage produced logits')
        // (count, nEmbd) f32 out, same positions
        await (await dialing).send({ ...f, hidden: out.hidden }, signal)
      } else if (f.type === 'decode' || f.last) {
        if (out.kind !== 'logits') throw new ActivationStageError(ActivationErrorCode.Internal, 'the last stage produced no logits')
        const nVocab = out.logits.length / out.nRows
        // (1, nVocab) f32: the last row
        const tokenId = sampler.sample(out.logits.subarray((out.nRows - 1) * nVocab))
        await (await dialing).send({ type: 'result', requestId: open.requestId, planId: open.planId, position: f.start + f.count, tokenId }, signal)
      }
    }
  }

  /** Reads the downstream hop: the listener only ever sends ERROR, or resets. */
  private async watchDownstream (next: HopChannel, failed: AbortController): Promise<void> {
    try {
      const f = await next.next()
      if (f !== undefined) failed.abort(new ProtocolDecodeError(`downstream stage sent ${f.type}`))
    } catch (err) {
      /** ERROR or reset from downstream: fail this request's upstream hop too */
      failed.abort(err)
    }
  }

  /** Aborts every hop in flight (their sessions are freed); later OPENs are refused with NOT_READY. */
  dispose (): void {
    this.disposed.abort(new DisposedError('stage runner'))
    this.options.retention?.clear()
  }
}
