import { randomUUID } from 'node:crypto'
import { AbortedError } from '../../shared/errors/exo-error.js'
import { ContextTooLongError, InvalidGenerationRequestError } from '../../shared/errors/generation-errors.js'
import { asRequestId } from '../../shared/ids.js'
import { resolveSampling } from '../../engine/sampling/sampler.js'
import { createGrammarConstraint } from '../../engine/grammar/grammar-constraint.js'
import { MAX_RECENT_TOKENS } from '../../protocols/activations/index.js'
import type { OpenFrame } from '../../protocols/activations/index.js'
import type { Plan } from '../../planner/index.js'
import type { LoadedShard } from '../../engine/types.js'
import type { RenderedPrompt } from '../../engine/tokenizer.js'
import type { GenerationEvent, InferenceRequest } from '../../shared/inference.js'
import { runTokenLoop } from '../generation-loop.js'
import type { GenerationTokenizer } from '../generation-loop.js'
import { generateLocal } from '../local-generator.js'
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
  signal: AbortSignal
}

/**
 * The first stage of a plan drives one request (DESIGN.md "Pipeline"): chat template and tokenization,
 * then — for a one-stage plan — local generation on its own shard, or — for k ≥ 2 stages — prefill and
 * decode around the ring (the last stage samples; grammar and penalties travel in OPEN). Every stage's
 * KV cache is freed on every exit path: END on a normal end, a reset on cancellation or failure.
 */
export async function * generateAsFirstStage (input: FirstStageInput): AsyncGenerator<GenerationEvent> {
  const { request: req, plan, shard, tokenizer, signal } = input
  if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) throw new InvalidGenerationRequestError(`maxTokens must be an integer ≥ 1, got ${req.maxTokens}`)
  const sampling = resolveSampling(req.sampling) // invalid settings fail before any session exists
  const rendered = tokenizer.renderPrompt(req.prompt)
  const meta = shard.metadata
  const contextSize = Math.min(input.contextSize ?? meta.contextLength, meta.contextLength)
  if (rendered.tokens.length >= contextSize) throw new ContextTooLongError(rendered.tokens.length, contextSize)
  if (rendered.tokens.length === 0) throw new InvalidGenerationRequestError('the prompt has no tokens')
  const stop = [...req.stop, ...rendered.stop]
  const resume = req.resumeTokens ?? []
  if (resume.length >= req.maxTokens) throw new InvalidGenerationRequestError(`${resume.length} resumed tokens leave nothing of maxTokens ${req.maxTokens} to generate`)

  if (plan.stages.length === 1) {
    const grammar = req.grammar !== undefined ? await createGrammarConstraint(input.modelPath, req.grammar, { signal }) : undefined
    try {
      yield * generateLocal({ shards: [shard], tokenizer, promptTokens: rendered.tokens, maxTokens: req.maxTokens, sampling: req.sampling, stop, contextSize, ...(grammar !== undefined ? { grammar } : {}), ...(resume.length > 0 ? { resume } : {}), signal })
    } finally {
      grammar?.dispose()
    }
    return
  }

  if (input.returnHops === undefined || input.dialStage1 === undefined) throw new InvalidGenerationRequestError(`plan ${plan.id.slice(0, 12)} has ${plan.stages.length} stages but no ring is wired`)
  if (signal.aborted) throw new AbortedError('generation aborted before it started', { cause: signal.reason })
  const cells = Math.min(contextSize, rendered.tokens.length + req.maxTokens)
  const requestId = asRequestId(`r-${randomUUID()}`)
  // the penalties' window: the prompt and, after a failover, the tokens generated before it
  const history = resume.length > 0 ? [...rendered.tokens, ...resume] : rendered.tokens
  const recent = sampling.penaltyLastN > 0 ? history.slice(-Math.min(MAX_RECENT_TOKENS, sampling.penaltyLastN)) : []
  const open: OpenFrame = {
    type: 'open',
    requestId,
    planId: plan.id,
    toStage: 1,
    contextSize: cells,
    // the seed is resolved here so a random seed is drawn once, by the node that owns the request
    sampling: { ...req.sampling, seed: sampling.seed },
    ...(req.grammar !== undefined ? { grammar: req.grammar } : {}),
    ...(recent.length > 0 ? { recentTokens: recent } : {}),
    ...(resume.length > 0 ? { resumedTokens: [...resume] } : {})
  }
  const returns = input.returnHops.expect(requestId)
  let session
  let channel: HopChannel | undefined
  try {
    session = shard.createSession({ contextSize: cells })
    channel = await input.dialStage1(open, signal)
  } catch (err) {
    returns.release()
    session?.dispose()
    throw err
  }
  const predictor = new PipelinePredictor(session, channel, returns, { requestId, planId: plan.id }, meta.nEmbd, input.timings, plan.stages.length)
  let finished = false
  try {
    for await (const event of runTokenLoop({ predictor, tokenizer, promptTokens: rendered.tokens, maxTokens: req.maxTokens, stop, cells, ...(resume.length > 0 ? { resume } : {}), signal })) {
      if (event.type === 'done' && event.finishReason !== 'cancelled') {
        // free every stage's KV cache before the client hears that the request is over
        finished = true
        await predictor.finish()
      }
      yield event
    }
  } finally {
    if (!finished) predictor.abort(new AbortedError(`request ${requestId} cancelled`))
  }
}
