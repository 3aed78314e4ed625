import { AbortedError } from '../../shared/errors/exo-error.js'
import { GenerationPipelineError } from '../../shared/errors/generation-errors.js'
import { DType } from '../../shared/tensor.js'
import { prefillChunkTokens } from '../../protocols/activations/index.js'
import type { PlanId, RequestId } from '../../shared/ids.js'
import type { ShardSession } from '../../engine/types.js'
import type { TokenPredictor } from '../generation-loop.js'
import type { ReturnHop } from './return-hops.js'
import type { HopChannel } from './stage-runner.js'

/** How long stage 0 waits for END to come back around the ring before it gives up politely. */
const END_ROUND_TRIP_TIMEOUT_MS = 5000

export interface PipelineTimings {
  /** ms stage 0 spent in its own layers */
  onComputeMs?: (ms: number, tokens: number) => void
  /** ms from a DECODE frame sent to its RESULT (the rest of the ring: hops + other stages' compute) */
  onRingMs?: (ms: number) => void
  /** a sampled token came back */
  onToken?: () => void
}

export interface PipelinePredictorOptions {
  /** prefix reuse: every stage's session already holds this many leading prompt positions; the first call feeds only the rest */
  reused?: number
  /** finish() leaves stage 0's session alive (the caller retains it) instead of freeing it */
  keepSession?: boolean
}

/**
 * Stage 0's side of one request on a multi-stage plan (protocols/activations.md): runs its own layers
 * on the tokens, sends the hidden state downstream (PREFILL chunks, then one DECODE per token) and
 * waits for the RESULT the last stage samples. `finish()` sends END around the ring; `abort()` resets
 * the hop, which frees every stage's session.
 */
export class PipelinePredictor implements TokenPredictor {
  private prefilled = false
  private closed = false
  /** aborted with the downstream hop's failure (ERROR relayed by stage 1, or a reset), or with the dial's */
  private readonly downstream = new AbortController()
  /** the hop to stage 1 once dialed */
  private channel: HopChannel | undefined

  constructor (
    private readonly session: ShardSession,
    /** the hop to stage 1, or its dial: the first step runs stage 0's layers meanwhile and sends once it is open */
    private readonly dialed: HopChannel | Promise<HopChannel>,
    private readonly returns: ReturnHop,
    private readonly ids: { requestId: RequestId, planId: PlanId },
    private readonly nEmbd: number,
    private readonly timings: PipelineTimings = {},
    /** stages of the plan: the engine runs this stage's decoding requests in that many groups (so stages overlap) */
    private readonly pipelineDepth = 1,
    private readonly options: PipelinePredictorOptions = {}
  ) {
    void Promise.resolve(dialed).then((c) => {
      this.channel = c
      if (this.closed) c.abort(new AbortedError(`request ${ids.requestId} ended before its hop was open`))
      else void this.watchDownstream(c)
    }, (err: unknown) => { this.downstream.abort(err) })
  }

  /** the hop, once open (the dial's failure, or the downstream's, throws) */
  private async hop (): Promise<HopChannel> { return this.channel ?? await this.dialed }

  get position (): number { return this.session.position }

  /** Stage 1 only ever answers on our hop with ERROR (a refusal, or a failure relayed from further down) or a reset. */
  private async watchDownstream (channel: HopChannel): Promise<void> {
    try {
      const f = await channel.next()
      if (f !== undefined) this.downstream.abort(new GenerationPipelineError(`stage 1 sent ${f.type} on the forward hop`))
    } catch (err) {
      if (!this.closed) this.downstream.abort(err)
    }
  }

  /** the request's signal combined with the downstream hop's, made once per request (not per token) */
  private combined: { outer: AbortSignal, signal: AbortSignal } | undefined

  async next (tokens: readonly number[], outer: AbortSignal): Promise<number> {
    if (this.combined?.outer !== outer) this.combined = { outer, signal: AbortSignal.any([outer, this.downstream.signal]) }
    const signal = this.combined.signal
    try {
      return await this.step(tokens, signal)
    } catch (err) {
      if (this.downstream.signal.aborted && !outer.aborted) throw this.downstream.signal.reason
      throw err
    }
  }

  private async step (tokens: readonly number[], signal: AbortSignal): Promise<number> {
    if (this.closed) throw new GenerationPipelineError(`request ${this.ids.requestId} is already finished`)
    if (tokens.length === 0) throw new GenerationPipelineError('no tokens to feed')
    const start = this.session.position
    const decoding = this.prefilled
    let sentAt = 0
    if (!this.prefilled) {
      const reused = this.options.reused ?? 0
      if (reused !== start || reused >= tokens.length) throw new GenerationPipelineError(`reused ${reused} prompt positions, stage 0 holds ${start} of ${tokens.length}`)
      tokens = tokens.slice(reused)
      const size = prefillChunkTokens(this.nEmbd)
      for (let off = 0; off < tokens.length; off += size) {
        const count = Math.min(size, tokens.length - off)
        const hidden = await this.run(tokens.slice(off, off + count), signal)
        sentAt = performance.now()
        // (count, nEmbd) f32, positions [start + off, start + off + count)
        await (await this.hop()).send({ ...this.ids, type: 'prefill', start: start + off, count, last: off + count === tokens.length, dtype: DType.F32, nEmbd: this.nEmbd, hidden }, signal)
      }
      this.prefilled = true
    } else {
      if (tokens.length !== 1) throw new GenerationPipelineError(`decode feeds one token, got ${tokens.length}`)
      const hidden = await this.run(tokens, signal)
      sentAt = performance.now()
      // (1, nEmbd) f32 at position `start`
      await (await this.hop()).send({ ...this.ids, type: 'decode', start, count: 1, last: false, dtype: DType.F32, nEmbd: this.nEmbd, hidden }, signal)
    }
    const result = await this.returns.next(signal)
    if (result === undefined) throw new GenerationPipelineError(`the ring of ${this.ids.requestId} ended before a token came back`)
    if (result.position !== start + tokens.length) throw new GenerationPipelineError(`RESULT for position ${result.position}, expected ${start + tokens.length}`)
    if (decoding) this.timings.onRingMs?.(performance.now() - sentAt)
    this.timings.onToken?.()
    return result.tokenId
  }

  /** (t) token ids → (t, nEmbd) f32 hidden state of stage 0's last layer */
  private async run (tokens: readonly number[], signal: AbortSignal): Promise<Float32Array> {
    const t0 = performance.now()
    const out = await this.session.forward({ kind: 'tokens', tokens: Int32Array.from(tokens) }, { signal, pipelineDepth: this.pipelineDepth })
    this.timings.onComputeMs?.(performance.now() - t0, tokens.length)
    if (out.kind !== 'hidden' || out.hidden.length !== tokens.length * this.nEmbd) {
      throw new GenerationPipelineError(`stage 0 returned ${out.kind === 'hidden' ? `${out.hidden.length} floats` : 'logits'}, expected (${tokens.length}, ${this.nEmbd})`)
    }
    return out.hidden
  }

  /**
   * Normal end: END travels the ring, every stage frees (or retains) its session; waits (bounded) for it to come
   * back. True when it did (every stage saw END); false when the hop had to be reset.
   */
  async finish (): Promise<boolean> {
    if (this.closed) return false
    this.closed = true
    let clean = false
    try {
      const channel = await this.hop()
      await channel.send({ ...this.ids, type: 'end' }, AbortSignal.timeout(END_ROUND_TRIP_TIMEOUT_MS))
      await channel.close()
      const back = AbortSignal.timeout(END_ROUND_TRIP_TIMEOUT_MS)
      for (;;) if (await this.returns.next(back) === undefined) break
      clean = true
    } catch (err) {
      /** a stage that went away meanwhile: resetting frees whatever is left */
      this.channel?.abort(err instanceof Error ? err : new AbortedError(String(err)))
    } finally {
      this.returns.release()
      if (this.options.keepSession !== true || !clean) this.session.dispose()
    }
    return clean
  }

  /** Cancellation or failure: reset the hop (the reset travels the ring) and free stage 0's session. */
  abort (reason: Error): void {
    this.closed = true
    // a hop still being dialed is reset once open (see the constructor)
    this.channel?.abort(reason)
    this.returns.release()
    this.session.dispose()
  }
}
