import { AbortedError } from '../shared/errors/exo-error.js'
import { ContextTooLongError, InvalidGenerationRequestError } from '../shared/errors/generation-errors.js'
import { Sampler } from '../engine/sampling/sampler.js'
import { ShardChain, runImmediately } from './shard-chain.js'
import { StopStringMatcher } from './stop-string-matcher.js'
import type { LoadedShard } from '../engine/types.js'
import type { FinishReason, GenerationEvent, SamplingParams } from '../shared/inference.js'
import type { ShardScheduler } from './shard-chain.js'

/** What the generator needs from a tokenizer (src/engine/tokenizer.ts implements it). */
export interface GenerationTokenizer {
  isEog (token: number): boolean
  createDecoder (context: readonly number[]): { push (token: number): string, flush (): string }
}

export interface LocalGenerationInput {
  /** the model's shards in layer order, first to last, all in this process */
  shards: readonly LoadedShard[]
  tokenizer: GenerationTokenizer
  /** prompt after templating, BOS included */
  promptTokens: readonly number[]
  maxTokens: number
  sampling: SamplingParams
  /** generation ends before any of these; they are never emitted */
  stop: readonly string[]
  /** prompt tokens per forward pass during prefill. Default 256. */
  prefillChunk?: number
  /** KV cells per session; default (and cap) the model's context length */
  contextSize?: number
  schedule?: ShardScheduler
  signal: AbortSignal
}

const DEFAULT_PREFILL_CHUNK = 256

/**
 * Generates from a chain of in-process shards: creates one session per shard, prefills the prompt in
 * chunks, then decodes token by token (sample on the last shard, feed the token to the first). Ends on an
 * end-of-generation token or a stop string (`stop`), on maxTokens or a full context (`length`), or on
 * abort (`cancelled`). Token events carry text that is final: complete UTF-8 characters, never part of a
 * stop string; a token whose text is held back yields no event until released. Sessions are freed on every
 * exit path, including a consumer that stops iterating.
 */
export async function * generateLocal (input: LocalGenerationInput): AsyncGenerator<GenerationEvent> {
  const { shards, tokenizer, promptTokens, maxTokens, signal } = input
  const first = shards[0]
  if (first === undefined) throw new InvalidGenerationRequestError('no shards to generate with')
  const meta = first.metadata
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidGenerationRequestError(`maxTokens must be an integer ≥ 1, got ${maxTokens}`)
  if (promptTokens.length === 0) throw new InvalidGenerationRequestError('the prompt has no tokens')
  const contextSize = Math.min(input.contextSize ?? meta.contextLength, meta.contextLength)
  if (promptTokens.length >= contextSize) throw new ContextTooLongError(promptTokens.length, contextSize)
  const sampler = new Sampler(input.sampling)
  if (signal.aborted) throw new AbortedError('generation aborted before it started', { cause: signal.reason })

  const cells = Math.min(contextSize, promptTokens.length + maxTokens)
  const sessions = shards.map((s) => s.createSession({ contextSize: cells }))
  const chain = new ShardChain(sessions, meta.nEmbd, meta.nVocab, input.schedule ?? runImmediately)
  const decoder = tokenizer.createDecoder(promptTokens.slice(-8))
  const matcher = new StopStringMatcher(input.stop)
  let completionTokens = 0
  const done = (finishReason: FinishReason): GenerationEvent => ({ type: 'done', finishReason, usage: { promptTokens: promptTokens.length, completionTokens } })
  try {
    for (const t of promptTokens) sampler.accept(t)
    const chunk = Math.max(1, input.prefillChunk ?? DEFAULT_PREFILL_CHUNK)
    let logits: Float32Array | undefined
    for (let i = 0; i < promptTokens.length; i += chunk) {
      logits = await chain.forward(Int32Array.from(promptTokens.slice(i, i + chunk)), signal)
    }
    let finish: FinishReason = 'length'
    let lastToken = -1
    for (;;) {
      // (nVocab) f32 logits of the last position
      const token = sampler.sample(logits!)
      sampler.accept(token)
      lastToken = token
      completionTokens++
      if (tokenizer.isEog(token)) { finish = 'stop'; break }
      const released = matcher.push(decoder.push(token))
      if (released.text !== '') yield { type: 'token', text: released.text, tokenId: token }
      if (released.stopped) { yield done('stop'); return }
      if (completionTokens >= maxTokens || chain.position >= cells) break
      if (signal.aborted) { finish = 'cancelled'; break }
      logits = await chain.forward(Int32Array.of(token), signal)
    }
    const tail = matcher.push(decoder.flush())
    const rest = tail.stopped ? tail.text : tail.text + matcher.flush()
    if (rest !== '' && finish !== 'cancelled') yield { type: 'token', text: rest, tokenId: lastToken }
    yield done(tail.stopped ? 'stop' : finish)
  } catch (err) {
    if (signal.aborted) { yield done('cancelled'); return }
    throw err
  } finally {
    chain.dispose()
  }
}
