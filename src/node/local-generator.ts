import { AbortedError } from '../shared/errors/exo-error.js'
import { ContextTooLongError, InvalidGenerationRequestError } from '../shared/errors/generation-errors.js'
import { resolveSampling } from '../engine/sampling/sampler.js'
import { runGenerationLoop } from './generation-loop.js'
import { ShardChain } from './shard-chain.js'
import { sessionCells, sessionKvBytes, takeRetainedChain } from './prefix-reuse.js'
import type { PrefixCache } from './prefix-cache.js'
import type { LoadedShard, ShardSession } from '../engine/types.js'
import type { GenerationEvent, SamplingParams } from '../shared/inference.js'
import type { GenerationTokenizer, TokenForward } from './generation-loop.js'
import type { GrammarConstraint } from '../engine/grammar/grammar-constraint.js'

export type { GenerationTokenizer } from './generation-loop.js'

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
  /** prompt tokens per forward pass during prefill. Default 512 (the engine's micro-batch). */
  prefillChunk?: number
  /** KV cells per session; default (and cap) the model's context length */
  contextSize?: number
  grammar?: GrammarConstraint
  /** failover: tokens already generated and delivered (see GenerationLoopInput.resume) */
  resume?: readonly number[]
  /**
   * Prefix reuse: the retained KV of earlier requests on these shards. A request whose tokens share a prefix
   * with an entry prefills only the rest; a request that ends normally is retained under `requestId`.
   */
  prefix?: { cache: PrefixCache<readonly ShardSession[]>, requestId: string }
  signal: AbortSignal
}

const DEFAULT_PREFILL_CHUNK = 512

/**
 * Generates from a chain of in-process shards: one session per shard (KV cells = prompt + maxTokens,
 * capped by the context), hidden states passed shard to shard through the wire codec, the generation loop
 * of generation-loop.ts on top. Sessions are freed on every exit path, including a consumer that stops
 * iterating early.
 */
export async function * generateLocal (input: LocalGenerationInput): AsyncGenerator<GenerationEvent> {
  const { shards, promptTokens, maxTokens, signal } = input
  const first = shards[0]
  if (first === undefined) throw new InvalidGenerationRequestError('no shards to generate with')
  const meta = first.metadata
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidGenerationRequestError(`maxTokens must be an integer ≥ 1, got ${maxTokens}`)
  if (promptTokens.length === 0) throw new InvalidGenerationRequestError('the prompt has no tokens')
  const contextSize = Math.min(input.contextSize ?? meta.contextLength, meta.contextLength)
  if (promptTokens.length >= contextSize) throw new ContextTooLongError(promptTokens.length, contextSize)
  const resume = input.resume ?? []
  if (resume.length >= maxTokens) throw new InvalidGenerationRequestError(`${resume.length} resumed tokens leave nothing of maxTokens ${maxTokens} to generate`)
  resolveSampling(input.sampling) // invalid settings fail before any session exists
  if (signal.aborted) throw new AbortedError('generation aborted before it started', { cause: signal.reason })

  const cells = Math.min(contextSize, promptTokens.length + maxTokens)
  const fed = resume.length > 0 ? [...promptTokens, ...resume] : [...promptTokens]
  const hit = input.prefix !== undefined ? takeRetainedChain(input.prefix.cache, fed, cells) : undefined
  const reused = hit?.reused ?? 0
  const sessions = hit?.sessions ?? shards.map((s) => s.createSession({ contextSize: sessionCells(cells, contextSize, meta) }))
  const chain = new ShardChain(sessions, meta.nEmbd, meta.nVocab)
  /** the tokens whose KV the sessions hold, in position order */
  const held = fed.slice(0, reused)
  const model: TokenForward = {
    get position () { return chain.position },
    async forward (tokens, signal) {
      const logits = await chain.forward(tokens, signal)
      for (const t of tokens) held.push(t)
      return logits
    }
  }
  let ended = false
  try {
    for await (const event of runGenerationLoop({
      model,
      tokenizer: input.tokenizer,
      promptTokens,
      maxTokens,
      sampling: input.sampling,
      stop: input.stop,
      cells,
      prefillChunk: input.prefillChunk ?? DEFAULT_PREFILL_CHUNK,
      ...(input.grammar !== undefined ? { grammar: input.grammar } : {}),
      ...(resume.length > 0 ? { resume } : {}),
      ...(reused > 0 ? { reused } : {}),
      signal
    })) {
      if (event.type === 'done') ended = event.finishReason !== 'cancelled'
      yield event
    }
  } finally {
    const p = input.prefix
    if (p !== undefined && ended && chain.position === held.length) {
      const bytes = shards.reduce((n, s) => n + sessionKvBytes(meta, held.length, s.range), 0)
      p.cache.put({ id: p.requestId, tokens: held, bytes, value: sessions })
    } else {
      chain.dispose()
    }
  }
}
