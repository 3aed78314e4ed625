import { getLlama, LlamaGrammar, LlamaGrammarEvaluationState, LlamaLogLevel } from 'node-llama-cpp'
import { DisposedError, throwIfAborted } from '../../shared/errors/exo-error.js'
import { GrammarViolationError, InvalidGrammarError } from '../../shared/errors/grammar-errors.js'
import type { Llama, LlamaModel } from 'node-llama-cpp'

/**
 * The one file that drives llama.cpp's grammar engine, through node-llama-cpp's grammar evaluation
 * state (`AddonSampler.canBeNextTokenForGrammarEvaluationState` / `acceptGrammarEvaluationStateToken`,
 * the same calls node-llama-cpp's own LlamaChat uses). Everything is validated here before a native
 * call: token ids are integers in [0, nVocab); a token is accepted only after the grammar said it may
 * come next (llama.cpp aborts the process on a forbidden end-of-generation token).
 */

interface AddonSamplerStatics {
  canBeNextTokenForGrammarEvaluationState: (state: unknown, token: number) => boolean
  acceptGrammarEvaluationStateToken: (state: unknown, token: number) => void
}

let llamaPromise: Promise<Llama> | undefined
const vocabModels = new Map<string, Promise<LlamaModel>>()

/** The CPU Llama instance used for vocab-only models (never builds from source). */
async function grammarLlama (): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error })
  return await llamaPromise
}

/** A vocab-only model per GGUF path, loaded once per process. */
export async function vocabModel (modelPath: string): Promise<LlamaModel> {
  let p = vocabModels.get(modelPath)
  if (p === undefined) {
    p = grammarLlama().then(async (llama) => await llama.loadModel({ modelPath, vocabOnly: true }))
    p.catch(() => vocabModels.delete(modelPath))
    vocabModels.set(modelPath, p)
  }
  return await p
}

/** A compiled grammar bound to one vocabulary; `state()` starts a fresh evaluation. */
export class NativeGrammar {
  readonly nVocab: number
  private readonly sampler: AddonSamplerStatics
  private readonly grammar: LlamaGrammar
  readonly endTokens: number[]

  constructor (readonly model: LlamaModel, gbnf: string) {
    const count = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length
    if (typeof count !== 'number' || count <= 0) throw new InvalidGrammarError('model has no vocabulary')
    this.nVocab = count
    try {
      this.grammar = new LlamaGrammar(model.llama, { grammar: gbnf })
    } catch (err) {
      throw new InvalidGrammarError(`grammar does not parse: ${(err as Error).message}`, { cause: err })
    }
    this.sampler = (model.llama as unknown as { _bindings: { AddonSampler: AddonSamplerStatics } })._bindings.AddonSampler
    this.endTokens = [...model.iterateAllTokens()].filter((t) => model.isEogToken(t))
  }

  state (): NativeGrammarState {
    return new NativeGrammarState(this, new LlamaGrammarEvaluationState({ model: this.model, grammar: this.grammar }), this.sampler)
  }
}

export class NativeGrammarState {
  private disposed = false
  private ended = false

  constructor (private readonly grammar: NativeGrammar, private readonly state: LlamaGrammarEvaluationState, private readonly sampler: AddonSamplerStatics) {}

  private handle (): unknown {
    if (this.disposed) throw new DisposedError('grammar constraint')
    return (this.state as unknown as { _state: unknown })._state
  }

  /** May `token` come next? */
  allows (token: number): boolean {
    if (!Number.isInteger(token) || token < 0 || token >= this.grammar.nVocab) return false
    if (this.ended) return false
    return this.sampler.canBeNextTokenForGrammarEvaluationState(this.handle(), token)
  }

  /** Sets every forbidden token's logit to -Infinity. `logits`: (nVocab') f32, nVocab' ≤ vocab size checked. */
  mask (logits: Float32Array): void {
    if (logits.length > this.grammar.nVocab) throw new GrammarViolationError(`logits has ${logits.length} entries, vocabulary ${this.grammar.nVocab}`)
    const state = this.handle()
    for (let t = 0; t < logits.length; t++) {
      if (logits[t] === Number.NEGATIVE_INFINITY) continue
      if (this.ended || !this.sampler.canBeNextTokenForGrammarEvaluationState(state, t)) logits[t] = Number.NEGATIVE_INFINITY
    }
  }

  accept (token: number): void {
    if (!this.allows(token)) throw new GrammarViolationError(`token ${token} is not allowed by the grammar here`)
    if (this.grammar.endTokens.includes(token)) { this.ended = true; return }
    this.sampler.acceptGrammarEvaluationStateToken(this.handle(), token)
  }

  /** The text so far is a complete sentence of the grammar (an end-of-generation token may come next). */
  isComplete (): boolean {
    if (this.ended) return true
    return this.grammar.endTokens.some((t) => this.allows(t))
  }

  dispose (): void { this.disposed = true }
}

/** Compiles `gbnf` against the vocabulary of the GGUF at `modelPath` (vocab-only load, cached). */
export async function compileGrammar (modelPath: string, gbnf: string, signal: AbortSignal): Promise<NativeGrammar> {
  throwIfAborted(signal)
  const model = await vocabModel(modelPath)
  throwIfAborted(signal)
  return new NativeGrammar(model, gbnf)
}
