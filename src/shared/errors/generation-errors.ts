import { ExoError } from './exo-error.js'

/** Sampling settings outside their valid range (e.g. negative temperature, topP > 1). */
export class InvalidSamplingParamsError extends ExoError {
  readonly code = 'INVALID_SAMPLING_PARAMS'
}

/**
 * Text the model's vocabulary cannot tokenize (a character without a token on a vocabulary that has no
 * byte fallback; llama.cpp would abort the process on it).
 */
export class UntokenizableTextError extends ExoError {
  readonly code = 'UNTOKENIZABLE_TEXT'
}

/** The tokenizer / vocabulary of a model file could not be loaded. */
export class TokenizerLoadError extends ExoError {
  readonly code = 'TOKENIZER_LOAD'
}

/** The chat prompt could not be rendered with the model's chat template (e.g. a tool message without its call). */
export class ChatTemplateError extends ExoError {
  readonly code = 'CHAT_TEMPLATE'
}

/** The prompt (after templating) does not fit the model's context. */
export class ContextTooLongError extends ExoError {
  readonly code = 'CONTEXT_TOO_LONG'
  constructor (readonly promptTokens: number, readonly contextSize: number) {
    super(`prompt of ${promptTokens} tokens does not fit the context of ${contextSize} tokens (at least one token must be generated)`)
  }
}

/** A request that is malformed for generation (e.g. maxTokens < 1, unsupported feature). */
export class InvalidGenerationRequestError extends ExoError {
  readonly code = 'INVALID_GENERATION_REQUEST'
}

/** The engine returned something the generator did not expect (wrong output kind or shape). */
export class GenerationPipelineError extends ExoError {
  readonly code = 'GENERATION_PIPELINE'
}

/**
 * The node runs as many sequences as its memory allows and its admission queue is full (HTTP 429 with
 * `Retry-After`; `BUSY` on the inference protocol).
 */
export class ServerBusyError extends ExoError {
  readonly code = 'BUSY'
  constructor (readonly running: number, readonly queued: number, readonly retryAfterSeconds: number) {
    super(`the node is at its limit: ${running} sequences running and ${queued} queued; retry in ${retryAfterSeconds} s`)
  }
}
