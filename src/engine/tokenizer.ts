import { getLlama, LlamaLogLevel, resolveChatWrapper } from 'node-llama-cpp'
import { throwIfAborted } from '../shared/errors/exo-error.js'
import { ChatTemplateError, TokenizerLoadError, UntokenizableTextError } from '../shared/errors/generation-errors.js'
import { createLogger } from '../shared/log.js'
import { toChatFunctions, toChatHistory } from './chat-history.js'
import { IncrementalDecoder } from './incremental-decoder.js'
import type { ChatWrapper, Llama, LlamaModel, LlamaText } from 'node-llama-cpp'
import type { ChatPrompt, TextPrompt } from '../shared/inference.js'
import type { LlamaTextJSON, Token } from 'node-llama-cpp'

const log = createLogger('engine:tokenizer')

let llamaPromise: Promise<Llama> | undefined

/** node-llama-cpp's runtime, once per process, CPU only, never building; its logs go to our logger (stderr). */
function sharedLlama (): Promise<Llama> {
  llamaPromise ??= getLlama({
    gpu: false,
    build: 'never',
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => { log.debug({ level }, message.trimEnd()) }
  })
  return llamaPromise
}

/** A prompt rendered to tokens, plus the stop strings its chat template implies (end-of-turn markers). */
export interface RenderedPrompt {
  tokens: number[]
  stop: string[]
}

/**
 * The vocabulary of one GGUF model (node-llama-cpp, `vocabOnly`): tokenization as llama.cpp's completion
 * does it, chat templating through node-llama-cpp's chat wrappers, detokenization, end-of-generation tokens.
 *
 * Safety: SentencePiece vocabularies without byte-fallback tokens make llama.cpp abort the process on a
 * character they lack; every text is checked against the vocabulary first (`UntokenizableTextError`).
 */
export class Tokenizer {
  readonly nVocab: number
  readonly hasChatTemplate: boolean
  /** null when every character can be tokenized (byte fallback or a byte-level BPE) */
  private readonly knownChars: ReadonlySet<string> | null
  /** end-of-generation tokens llama.cpp does not flag but LlamaCompletion stops on (gemma's file separators) */
  private readonly extraEog: ReadonlySet<number>
  private disposed = false
  private wrapper: ChatWrapper | undefined

  private constructor (private readonly model: LlamaModel, readonly modelPath: string) {
    const md = model.fileInfo.metadata as { general?: { architecture?: unknown }, tokenizer?: { ggml?: { tokens?: unknown }, chat_template?: unknown } }
    const tokens = md.tokenizer?.ggml?.tokens
    const list = Array.isArray(tokens) ? tokens.filter((t): t is string => typeof t === 'string') : []
    this.nVocab = list.length > 0 ? list.length : [...model.iterateAllTokens()].length
    this.hasChatTemplate = typeof md.tokenizer?.chat_template === 'string'
    this.knownChars = model.vocabularyType === 'spm' && !hasByteFallback(list) ? singleCharTokens(list) : null
    const gemma = md.general?.architecture === 'gemma' || md.general?.architecture === 'gemma2'
    this.extraEog = new Set(gemma ? ['<|file_separator|>', '<|fim_prefix|>'].map((x) => list.indexOf(x)).filter((i) => i >= 0) : [])
  }

  static async load (modelPath: string, options: { signal?: AbortSignal } = {}): Promise<Tokenizer> {
    throwIfAborted(options.signal)
    const llama = await sharedLlama()
    let model: LlamaModel
    try {
      model = await llama.loadModel({ modelPath, vocabOnly: true })
    } catch (err) {
      throw new TokenizerLoadError(`cannot load the vocabulary of ${modelPath}: ${(err as Error).message}`, { cause: err })
    }
    if (options.signal?.aborted === true) { await model.dispose(); throwIfAborted(options.signal) }
    return new Tokenizer(model, modelPath)
  }

  /**
   * Tokens of a plain-text prompt the way node-llama-cpp's LlamaCompletion (our reference) makes them:
   * BOS first when the vocabulary wants it, special-token text not parsed, and no SentencePiece space
   * prefix ("Once" → `O` `n` `ce`, not `▁Once`; llama-server would add the prefix). Greedy text then
   * equals LlamaCompletion's.
   */
  tokenizeCompletion (text: string): number[] {
    this.checkText(text)
    const bos = this.model.tokens.shouldPrependBosToken ? this.model.tokens.bos : null
    if (bos === null) return this.model.tokenize(text, false)
    return [bos, ...this.model.tokenize(text, false, 'trimLeadingSpace')]
  }

  /** Plain tokenization, no BOS. `special`: parse special-token text like `<s>` (default false). */
  tokenize (text: string, options: { special?: boolean } = {}): number[] {
    this.checkText(text)
    return this.model.tokenize(text, options.special ?? false)
  }

  /**
   * node-llama-cpp's chat wrapper for this model (resolved once): for a GGUF with a `tokenizer.chat_template`, the
   * specialised wrapper whose rendering equals that Jinja template (Gemma, Llama 3.1, Mistral, … — with their
   * tool-call formats), else a JinjaTemplateChatWrapper rendering the template itself; without a template, the
   * best match for the model's name and architecture.
   */
  private chatWrapper (): ChatWrapper {
    this.wrapper ??= resolveChatWrapper(this.model)
    return this.wrapper
  }

  /** Name of the chat wrapper prompts go through (e.g. 'Gemma', 'Llama 3.1', 'JinjaTemplate'). */
  get chatWrapperName (): string { this.ensureLive(); return this.chatWrapper().wrapperName }

  /** The chat prompt as the wrapper renders it, special tokens as text (diagnostics; `renderChat` tokenizes the same). */
  renderChatText (prompt: ChatPrompt): string {
    return jsonParts(this.contextState(prompt).contextText.toJSON()).map((p) => typeof p === 'string' ? p : p.value).join('')
  }

  private contextState (prompt: ChatPrompt): { contextText: LlamaText, stopGenerationTriggers: LlamaText[] } {
    this.ensureLive()
    const wrapper = this.chatWrapper()
    try {
      return wrapper.generateContextState({ chatHistory: toChatHistory(prompt.messages), availableFunctions: toChatFunctions(prompt.tools), documentFunctionParams: true })
    } catch (err) {
      if (err instanceof ChatTemplateError) throw err
      throw new ChatTemplateError(`chat wrapper ${wrapper.wrapperName} failed: ${(err as Error).message}`, { cause: err })
    }
  }

  /** A chat prompt through the model's chat wrapper (its template, or node-llama-cpp's best match). */
  renderChat (prompt: ChatPrompt): RenderedPrompt {
    const state = this.contextState(prompt)
    for (const part of jsonParts(state.contextText.toJSON())) {
      if (typeof part === 'string' || part.type === 'specialTokensText') this.checkText(typeof part === 'string' ? part : part.value)
    }
    const tokens = state.contextText.tokenize(this.model.tokenizer)
    const stop = state.stopGenerationTriggers.flatMap((t) => {
      const parts = jsonParts(t.toJSON())
      if (parts.some((p) => typeof p !== 'string' && p.type === 'specialToken')) return [] // EOS & co: end-of-generation tokens
      return [parts.map((p) => typeof p === 'string' ? p : p.value).join('')]
    })
    return { tokens, stop: [...new Set(stop)].filter((s) => s.length > 0) }
  }

  /** Prompt tokens for either kind of prompt. */
  renderPrompt (prompt: ChatPrompt | TextPrompt): RenderedPrompt {
    return prompt.kind === 'text' ? { tokens: this.tokenizeCompletion(prompt.text), stop: [] } : this.renderChat(prompt)
  }

  /** Text of tokens; `context` = tokens that precede them (decides leading spaces). Special tokens give ''. */
  detokenize (tokens: readonly number[], context: readonly number[] = []): string {
    this.ensureLive()
    return this.model.detokenize(tokens.filter((t) => this.isValidToken(t)) as Token[], false, context.filter((t) => this.isValidToken(t)) as Token[])
  }

  /** A UTF-8-safe streaming decoder; `context` = the tokens before the first one pushed (the prompt). */
  createDecoder (context: readonly number[] = []): IncrementalDecoder {
    return new IncrementalDecoder((tokens, ctx) => this.detokenize(tokens, ctx), { context })
  }

  /** End of generation (EOS, EOT, …). */
  isEog (token: number): boolean {
    this.ensureLive()
    return this.isValidToken(token) && (this.model.isEogToken(token as Token) || this.extraEog.has(token))
  }

  isValidToken (token: number): boolean {
    return Number.isInteger(token) && token >= 0 && token < this.nVocab
  }

  async dispose (): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    await this.model.dispose()
  }

  /** Throws `UntokenizableTextError` for text llama.cpp cannot tokenize with this vocabulary. */
  checkText (text: string): void {
    this.ensureLive()
    if (this.knownChars === null) return
    for (const ch of text) {
      if (!this.knownChars.has(ch === ' ' ? '\u2581' : ch)) {
        throw new UntokenizableTextError(`character ${JSON.stringify(ch)} (U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) is not in the vocabulary of ${this.modelPath}, which has no byte fallback`)
      }
    }
  }

  private ensureLive (): void {
    if (this.disposed) throw new TokenizerLoadError(`tokenizer of ${this.modelPath} was disposed`)
  }
}

function hasByteFallback (tokens: readonly string[]): boolean {
  const set = new Set(tokens)
  for (let b = 0; b < 256; b++) if (!set.has(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)) return false
  return true
}

/** Tokens that are exactly one character: what SentencePiece falls back to for unknown pieces. */
function singleCharTokens (tokens: readonly string[]): Set<string> {
  const set = new Set<string>()
  for (const t of tokens) if ([...t].length === 1) set.add(t)
  return set
}

type JsonPart = string | { type: 'specialToken' | 'specialTokensText', value: string }
function jsonParts (json: LlamaTextJSON): JsonPart[] {
  return (Array.isArray(json) ? json : [json]) as JsonPart[]
}
