import { randomUUID } from 'node:crypto'
import { AbortedError } from '../../shared/errors/exo-error.js'
import { ContextTooLongError, InvalidGenerationRequestError } from '../../shared/errors/generation-errors.js'
import { asRequestId } from '../../shared/ids.js'
import { resolveSampling } from '../../engine/sampling/sampler.js'
import { createGrammarConstraint } from '../../engine/grammar/grammar-constraint.js'
import { MAX_RECENT_TOKENS } from '../../protocols/activations/index.js'
import type { OpenFrame } from '../../protocols/activations/index.js'
import type { Plan } from '../../planner/index.js'
import type { LoadedShard, ShardSession } from '../../engine/types.js'
import type { RenderedPrompt } from '../../engine/tokenizer.js'
import type { GenerationEvent, InferenceRequest } from '../../shared/inference.js'
import { runTokenLoop } from '../generation-loop.js'
import type { GenerationTokenizer, TokenPredictor } from '../generation-loop.js'
import { generateLocal } from '../local-generator.js'
import { sessionCells, sessionKvBytes, takeRetainedChain } from '../prefix-reuse.js'
import type { PrefixCache } from '../prefix-cache.js'
import { ActivationStageError, ActivationErrorCode } from '../../shared/errors/protocol-errors.js'
import { PipelinePredictor } from './pipeline-predictor.js'
import type { PipelineTimings } from './pipeline-predictor.js'
import type { ReturnHops } from './return-hops.js'
import type { HopChannel } from './stage-runner.js'

export interface FirstStageTokenizer extends GenerationTokenizer {
  renderPrompt (prompt: InferenceRequest['prompt']): RenderedPrompt
}

export interface FirstStageInput {
  request: InferenceRequest
  plan: Plan
  /** stage 0's shard: layers [0, plan.stages[0].end) */
  shard: LoadedShard
  modelPath: string
  tokenizer: FirstStageTokenizer
  /** cap on KV cells per request (default: the model's context length) */
  contextSize?: number
  /** multi-stage plans: where RESULTs of the last hop arrive */
  returnHops?: ReturnHops
  /** multi-stage plans: opens this request's hop to stage 1 and sends `open` */
  dialStage1?: (open: OpenFrame, signal: AbortSignal) => Promise<HopChannel>
  timings?: PipelineTimings
  /**
   * Prefix reuse: stage 0's retained KV of finished requests (the other stages retain theirs under the same
   * request ids, protocols/activations.md "Prefix reuse"). Absent: every request is prefilled cold.
   */
  prefix?: PrefixCache<readonly ShardSession[]>
  /** admission: waits for a slot for a sequence of `cells` KV cells (ServerBusyError when the queue is full); resolves to its release */
  admit?: (cells: number, signal: AbortSignal) => Promise<() => void>
  signal: AbortSignal
}

/**
 * The first stage of a plan drives one request (DESIGN.md "Pipeline"): chat template and tokenization,
 * then — for a one-stage plan — local generation on its own shard, or — for k ≥ 2 stages — prefill and
 * decode around the ring (the last stage samples; grammar and penalties travel in OPEN). Every stage's
 * KV cache is freed on every exit path: END on a normal end, a reset on cancellation or failure.
 */
export async function * generateAsFirstStage (input: FirstStageInput): AsyncGenerator<GenerationEvent> {
  const { request: req, shard, tokenizer, signal } = input
  if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) throw new InvalidGenerationRequestError(`maxTokens must be an integer ≥ 1, got ${req.maxTokens}`)
  const rendered = tokenizer.renderPrompt(req.prompt)
  const contextSize = Math.min(input.contextSize ?? shard.metadata.contextLength, shard.metadata.contextLength)
  const release = await input.admit?.(Math.min(contextSize, rendered.tokens.length + req.maxTokens), signal)
  try {
    yield * admitted(input, rendered)
  } finally {
    release?.()
  }
}

async function * admitted (input: FirstStageInput, rendered: RenderedPrompt): AsyncGenerator<GenerationEvent> {
  const { request: req, plan, shard, tokenizer, signal } = input
  const sampling = resolveSampling(req.sampling) // invalid settings fail before any session exists
  const meta = shard.metadata
  const contextSize = Math.min(input.contextSize ?? meta.contextLength, meta.contextLength)
  if (rendered.tokens.length >= contextSize) throw new ContextTooLongError(rendered.tokens.length, contextSize)
  if (rendered.tokens.length === 0) throw new InvalidGenerationRequestError('the prompt has no tokens')
  const stop = [...req.stop, ...rendered.stop]
  const resume = req.resumeTokens ?? []
  if (resume.length >= req.maxTokens) throw new InvalidGenerationRequestError(`${resume.length} resumed tokens leave nothing of maxTokens ${req.maxTokens} to generate`)

  // retained KV yields to running requests (this one included)
  input.prefix?.trim()
  if (plan.stages.length === 1) {
    const grammar = req.grammar !== undefined ? await createGrammarConstraint(input.modelPath, req.grammar, { signal }) : undefined
    try {
      const prefix = input.prefix !== undefined ? { prefix: { cache: input.prefix, requestId: `r-${randomUUID()}` } } : {}
      yield * generateLocal({ shards: [shard], tokenizer, promptTokens: rendered.tokens, maxTokens: req.maxTokens, sampling: req.sampling, stop, contextSize, ...(grammar !== undefined ? { grammar } : {}), ...(resume.length > 0 ? { resume } : {}), ...prefix, signal })
    } finally {
      grammar?.dispose()
    }
    return
  }

  if (input.returnHops === undefined || input.dialStage1 === undefined) throw new InvalidGenerationRequestError(`plan ${plan.id.slice(0, 12)} has ${plan.stages.length} stages but no ring is wired`)
  if (signal.aborted) throw new AbortedError('generation aborted before it started', { cause: signal.reason })
  const cells = Math.min(contextSize, rendered.tokens.length + req.maxTokens)
  // the penalties' window: the prompt and, after a failover, the tokens generated before it
  const history = resume.length > 0 ? [...rendered.tokens, ...resume] : rendered.tokens
  const recent = sampling.penaltyLastN > 0 ? history.slice(-Math.min(MAX_RECENT_TOKENS, sampling.penaltyLastN)) : []
  const base: Omit<OpenFrame, 'requestId' | 'contextSize'> = {
    type: 'open',
    planId: plan.id,
    toStage: 1,
    // the seed is resolved here so a random seed is drawn once, by the node that owns the request
    sampling: { ...req.sampling, seed: sampling.seed },
    ...(req.grammar !== undefined ? { grammar: req.grammar } : {}),
    ...(recent.length > 0 ? { recentTokens: recent } : {}),
    ...(resume.length > 0 ? { resumedTokens: [...resume] } : {}),
    ...(input.prefix !== undefined ? { retain: true } : {})
  }
  const loop = { tokenizer, promptTokens: rendered.tokens, maxTokens: req.maxTokens, stop, cells, ...(resume.length > 0 ? { resume } : {}), signal }
  const hit = input.prefix !== undefined ? takeRetainedChain(input.prefix, history, cells) : undefined
  if (hit !== undefined) {
    let started = false
    try {
      for await (const event of ringAttempt(input, { ...base, prefix: { requestId: asRequestId(hit.id), keep: hit.reused } }, hit.sessions[0]!, loop)) { started = true; yield event }
      return
    } catch (err) {
      // a later stage evicted the retained KV: run the request again cold (no token was sampled yet)
      if (started || !(err instanceof ActivationStageError) || err.wireCode !== ActivationErrorCode.PrefixMissing) throw err
      input.prefix!.stats.hits--
      input.prefix!.stats.misses++
    }
  }
  const session = shard.createSession({ contextSize: sessionCells(cells, contextSize, meta) })
  yield * ringAttempt(input, base, session, loop)
}

type RingLoop = Omit<Parameters<typeof runTokenLoop>[0], 'predictor'>

/**
 * One run of the request around the ring from `session` (cold, or a retained one cut at `open.prefix.keep`),
 * under a new request id. A normal end retains every stage's KV (stage 0's in `input.prefix`); anything else
 * frees it. An OPEN refused for its prefix surfaces as ActivationStageError PREFIX_MISSING before any event.
 */
async function * ringAttempt (input: FirstStageInput, base: Omit<OpenFrame, 'requestId' | 'contextSize'>, session: ShardSession, loop: RingLoop): AsyncGenerator<GenerationEvent> {
  const { shard, plan } = input
  const requestId = asRequestId(`r-${randomUUID()}`)
  const open: OpenFrame = { ...base, requestId, contextSize: session.contextSize }
  const returns = input.returnHops!.expect(requestId)
  // the hop is dialed while stage 0 runs its part of the prompt (a dial on a busy mesh takes ~20 ms); a failed dial
  // fails the first step, and the predictor frees what the request holds
  const channel: Promise<HopChannel> = input.dialStage1!(open, loop.signal)
  const reused = open.prefix?.keep ?? 0
  const retain = input.prefix !== undefined
  const predictor = new PipelinePredictor(session, channel, returns, { requestId, planId: plan.id }, shard.metadata.nEmbd, input.timings, plan.stages.length, { reused, keepSession: retain })
  /** the tokens whose KV the ring holds: everything fed (the first call passes the whole prompt) */
  const held: number[] = []
  const recording: TokenPredictor = {
    get position () { return predictor.position },
    async next (tokens, signal) { const t = await predictor.next(tokens, signal); for (const x of tokens) held.push(x); return t }
  }
  let finished = false
  try {
    for await (const event of runTokenLoop({ ...loop, predictor: recording })) {
      if (event.type === 'done' && event.finishReason !== 'cancelled') {
        // free (or retain) every stage's KV cache before the client hears that the request is over
        finished = true
        const clean = await predictor.finish()
        if (retain && clean) {
          if (session.position === held.length) input.prefix!.put({ id: requestId, tokens: held, bytes: sessionKvBytes(shard.metadata, held.length, shard.range), value: [session] })
          else session.dispose()
        }
      }
      yield event
    }
  } finally {
    if (!finished) predictor.abort(new AbortedError(`request ${requestId} cancelled`))
  }
}
