import { Sampler } from '../engine/sampling/sampler.js'
import { StopStringMatcher } from './stop-string-matcher.js'
import type { FinishReason, GenerationEvent, SamplingParams } from '../shared/inference.js'
import type { GrammarConstraint } from '../engine/grammar/grammar-constraint.js'

/** What the loop needs from a tokenizer (src/engine/tokenizer.ts implements it). */
export interface GenerationTokenizer {
  isEog (token: number): boolean
  createDecoder (context: readonly number[]): { push (token: number): string, flush (): string }
}

/** A model with a KV cache behind one call: a local shard chain, or a pipeline across the mesh. */
export interface TokenForward {
  /** tokens already in the cache */
  readonly position: number
  /**
   * @param tokens (t) token ids, appended at `position`
   * @returns (nVocab) f32 logits of the last token, valid until the event loop turns (the engine reuses the buffer:
   *   ForwardOptions.borrowOutput) — sample or copy them before awaiting anything else
   */
  forward (tokens: Int32Array, signal: AbortSignal): Promise<Float32Array>
}

/**
 * Where the next token comes from: a model plus a sampler here (`samplingPredictor`), or a pipeline
 * whose last stage samples and sends the token id back (src/node/pipeline/pipeline-predictor.ts).
 */
export interface TokenPredictor {
  /** tokens already in the cache */
  readonly position: number
  /**
   * Appends `tokens` at `position` — the whole prompt on the first call (the predictor chunks it),
   * then the previously predicted token — and returns the next token id.
   */
  next (tokens: readonly number[], signal: AbortSignal): Promise<number>
}

export interface GenerationLoopInput {
  model: TokenForward
  tokenizer: GenerationTokenizer
  /** prompt after templating, BOS included; the model's cache is empty or holds the first `reused` of them */
  promptTokens: readonly number[]
  maxTokens: number
  sampling: SamplingParams
  /** generation ends before any of these; they are never emitted */
  stop: readonly string[]
  /** KV capacity: generation ends with `length` when the cache is full */
  cells: number
  /** prompt tokens per forward pass during prefill */
  prefillChunk: number
  /** structured output / tool calls: tokens the grammar forbids are never sampled */
  grammar?: GrammarConstraint
  /**
   * Failover: tokens this request already generated (and whose events the client already received)
   * before its pipeline broke. They are prefilled after the prompt and replayed silently (no events),
   * so the text continues exactly where it stopped; they count towards maxTokens.
   */
  resume?: readonly number[]
  /** prefix reuse: the cache already holds the KV of the first `reused` prompt (+ resume) tokens; only the rest is prefilled */
  reused?: number
  signal: AbortSignal
}

export type TokenLoopInput = Omit<GenerationLoopInput, 'model' | 'sampling' | 'prefillChunk' | 'grammar' | 'reused'> & { predictor: TokenPredictor }

/** Sampling with llama.cpp's grammar order: try the unconstrained pick; only if the grammar rejects it, mask and resample. */
export function sampleConstrained (sampler: Sampler, logits: Float32Array, grammar: GrammarConstraint | undefined): number {
  let token = sampler.sample(logits)
  if (grammar !== undefined) {
    if (!grammar.allows(token)) { grammar.mask(logits); token = sampler.sample(logits) }
    grammar.accept(token)
  }
  sampler.accept(token)
  return token
}

/**
 * A local model + this process's sampler (and grammar) as a TokenPredictor; the prompt goes in `prefillChunk`-token
 * passes. `reused`: the model's cache already holds the KV of that many leading prompt tokens (prefix reuse): the
 * first call feeds only the rest, while the sampler's penalty window still sees the whole prompt.
 */
export function samplingPredictor (model: TokenForward, options: { sampling: SamplingParams, prefillChunk: number, grammar?: GrammarConstraint, resumed?: readonly number[], reused?: number }): TokenPredictor {
  const sampler = new Sampler(options.sampling)
  // failover: the grammar and the random stream continue after the tokens generated before it
  for (const t of options.resumed ?? []) options.grammar?.accept(t)
  sampler.skipDraws(options.resumed?.length ?? 0)
  const chunk = Math.max(1, options.prefillChunk)
  let first = true
  return {
    get position () { return model.position },
    async next (tokens, signal) {
      let from = 0
      if (first) {
        first = false
        for (const t of tokens) sampler.accept(t)
        from = options.reused ?? 0
        if (from !== model.position || from >= tokens.length) throw new RangeError(`reused ${from} prompt tokens, the cache holds ${model.position} of ${tokens.length}`)
      }
      let logits: Float32Array | undefined
      for (let i = from; i < tokens.length; i += chunk) logits = await model.forward(Int32Array.from(tokens.slice(i, i + chunk)), signal)
      // (nVocab) f32 logits of the last position
      return sampleConstrained(sampler, logits!, options.grammar)
    }
  }
}

/**
 * Prefill in chunks, then sample / feed back token by token (see runTokenLoop).
 */
export async function * runGenerationLoop (input: GenerationLoopInput): AsyncGenerator<GenerationEvent> {
  const { model, sampling, prefillChunk, grammar, reused, ...rest } = input
  yield * runTokenLoop({ ...rest, predictor: samplingPredictor(model, { sampling, prefillChunk, ...(grammar !== undefined ? { grammar } : {}), ...(input.resume !== undefined ? { resumed: input.resume } : {}), ...(reused !== undefined ? { reused } : {}) }) })
}

/**
 * The prompt, then each predicted token fed back. Ends on an end-of-generation token or a stop
 * string (`stop`), on maxTokens or a full cache (`length`), or on abort (`cancelled`).
 *
 * Exactly one token event per generated token, in order, so a consumer can list the tokens (failover
 * resumes from them). Its text is final: complete UTF-8 characters, never part of a stop string; it is
 * empty while the token's text is held back (a partial character, a possible stop-string start), and
 * the token that releases held text carries it. The end-of-generation token gets an event only when it
 * releases held text. Exactly one `done` at the end. Errors other than an abort are thrown.
 */
export async function * runTokenLoop (input: TokenLoopInput): AsyncGenerator<GenerationEvent> {
  const { predictor, tokenizer, promptTokens, maxTokens, signal } = input
  const resume = input.resume ?? []
  const decoder = tokenizer.createDecoder(promptTokens.slice(-8))
  const matcher = new StopStringMatcher(input.stop)
  let completionTokens = 0
  const done = (finishReason: FinishReason, stopSequence?: string): GenerationEvent => ({
    type: 'done', finishReason, usage: { promptTokens: promptTokens.length, completionTokens }, ...(stopSequence !== undefined ? { stopSequence } : {})
  })
  /** held text released at the end (no stop string can complete any more) */
  const tail = (): { text: string, stopped: boolean, matched?: string } => {
    const t = matcher.push(decoder.flush())
    return t.stopped ? t : { text: t.text + matcher.flush(), stopped: false }
  }
  try {
    let token = await predictor.next(resume.length > 0 ? [...promptTokens, ...resume] : promptTokens, signal)
    // failover: the decoder and the stop-string matcher pick up exactly where the lost pipeline left them
    for (const t of resume) { completionTokens++; matcher.push(decoder.push(t)) }
    for (;;) {
      completionTokens++
      if (tokenizer.isEog(token)) {
        const t = tail()
        if (t.text !== '') yield { type: 'token', text: t.text, tokenId: token }
        yield t.stopped ? done('stop', t.matched) : done('stop')
        return
      }
      const released = matcher.push(decoder.push(token))
      if (released.stopped) {
        if (released.text !== '') yield { type: 'token', text: released.text, tokenId: token }
        yield done('stop', released.matched)
        return
      }
      const full = completionTokens >= maxTokens || predictor.position >= input.cells
      if (full || signal.aborted) {
        const t = full ? tail() : { text: '', stopped: false }
        yield { type: 'token', text: released.text + t.text, tokenId: token }
        yield t.stopped ? done('stop', t.matched) : done(full ? 'length' : 'cancelled')
        return
      }
      yield { type: 'token', text: released.text, tokenId: token }
      token = await predictor.next([token], signal)
    }
  } catch (err) {
    if (signal.aborted) { yield done('cancelled'); return }
    throw err
  }
}
