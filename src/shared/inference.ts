import type { ModelId, RequestId } from './ids.js'

/**
 * THE internal request type. Every API dialect converts into it; the node routes it to the local
 * engine or into the pipeline; the inference protocol carries it to the first stage (as JSON).
 */
export interface InferenceRequest {
  id: RequestId
  model: ModelId
  prompt: ChatPrompt | TextPrompt
  /** Maximum tokens to generate (≥ 1). */
  maxTokens: number
  sampling: SamplingParams
  /** Generation stops before any of these strings; the stop string is not emitted. */
  stop: string[]
  /** Constrained decoding (structured output / tool calls). Absent = unconstrained. */
  grammar?: GrammarSpec
  /**
   * Failover (set by the node, never by a client): the tokens this request already generated before
   * the pipeline serving it broke. The first stage prefills them after the prompt and continues.
   */
  resumeTokens?: number[]
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool'
  content: string
  /** assistant messages that called tools */
  toolCalls?: ToolCall[]
  /** tool messages: which call this answers */
  toolCallId?: string
  name?: string
}

export interface ToolDefinition {
  name: string
  description?: string
  /** JSON schema of the arguments */
  parameters: Record<string, unknown>
}

export interface ToolCall {
  id: string
  name: string
  /** JSON text of the arguments */
  arguments: string
}

export interface ChatPrompt {
  kind: 'chat'
  messages: ChatMessage[]
  tools?: ToolDefinition[]
}

export interface TextPrompt {
  kind: 'text'
  text: string
}

/** Sampling settings; a field left out takes the documented default of the sampler. */
export interface SamplingParams {
  /** 0 = greedy. Default 0.8 (as llama.cpp). */
  temperature?: number
  /** 0 = disabled. */
  topK?: number
  /** 1 = disabled. */
  topP?: number
  /** 0 = disabled. */
  minP?: number
  /** 1 = disabled. */
  repeatPenalty?: number
  /** How many recent tokens the penalties look at. Default 64. */
  penaltyLastN?: number
  presencePenalty?: number
  frequencyPenalty?: number
  /** Same seed ⇒ same tokens. */
  seed?: number
}

export type GrammarSpec =
  | { kind: 'json' }
  | { kind: 'json_schema', schema: Record<string, unknown> }
  | { kind: 'gbnf', grammar: string }
  | { kind: 'tool_call', tools: ToolDefinition[], required: boolean }

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'cancelled' | 'error'

export interface Usage {
  promptTokens: number
  completionTokens: number
}

/** What a generation yields, in order: any number of `token` events, then exactly one `done`. */
export type GenerationEvent =
  | { type: 'token', text: string, tokenId: number }
  | {
    type: 'done'
    finishReason: FinishReason
    usage: Usage
    toolCalls?: ToolCall[]
    /** (optional, added by the API issue) the stop string that ended generation, when one did */
    stopSequence?: string
  }

export interface ModelInfo {
  id: ModelId
  /** Bytes of the GGUF file. */
  sizeBytes: number
  architecture: string
  nLayers: number
  contextLength: number
  hasChatTemplate: boolean
  /** Nodes (names) that hold it on disk. */
  heldBy: string[]
}

/**
 * The port the API calls. Implemented by the node: the local engine on one node, the pipeline
 * across the mesh. Errors are ExoError subclasses (unknown model, context too long, no ready plan…).
 */
export interface InferenceService {
  generate (req: InferenceRequest, options: { signal: AbortSignal }): AsyncIterable<GenerationEvent>
  /** Tokens the prompt occupies after templating. */
  countTokens (req: Pick<InferenceRequest, 'model' | 'prompt'>, options: { signal: AbortSignal }): Promise<number>
  listModels (options: { signal: AbortSignal }): Promise<ModelInfo[]>
}
