import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import { InvalidRequestError } from '../../shared/errors/api-errors.js'
import type { FinishReason, GenerationEvent, GrammarSpec, ToolDefinition, Usage, ToolCall, SamplingParams } from '../../shared/inference.js'

/** max_tokens when the client leaves it out (chat dialects). */
export const DEFAULT_MAX_TOKENS = 512
/** Upper bound on max_tokens (anything larger is a client bug; context length limits it anyway). */
export const MAX_TOKENS_LIMIT = 1_048_576
const MAX_STOP_STRINGS = 16

/** `prefix-<24 hex>` ids for completions, messages, tool calls. */
export function newId (prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`
}

/** Validates `body` with `schema`; the first issue becomes an InvalidRequestError (HTTP 400). */
export function parseBody<T> (schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidRequestError('request body must be a JSON object')
  }
  const result = schema.safeParse(body)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  const path = issue?.path.map(String).join('.') ?? ''
  throw new InvalidRequestError(`${path === '' ? 'body' : path}: ${issue?.message ?? 'invalid'}`, path === '' ? undefined : path)
}

// ---- reusable field schemas -------------------------------------------------------------------

export const modelField = z.string().min(1).max(256)
export const maxTokensField = z.number().int().min(1).max(MAX_TOKENS_LIMIT)
export const temperatureField = z.number().min(0).max(2)
export const topPField = z.number().min(0).max(1)
export const topKField = z.number().int().min(0).max(1_000_000)
export const penaltyField = z.number().min(-2).max(2)
export const seedField = z.number().int().min(-Number.MAX_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER)
export const stopField = z.union([z.string().max(1024), z.array(z.string().max(1024)).max(MAX_STOP_STRINGS)])
export const jsonSchemaField = z.record(z.string(), z.unknown())
export const toolNameField = z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/, 'tool names use letters, digits, _ . : -')

/** `stop` as a list without empty strings. */
export function stopList (stop: string | string[] | null | undefined): string[] {
  if (stop === undefined || stop === null) return []
  return (typeof stop === 'string' ? [stop] : stop).filter((s) => s.length > 0)
}

/** Tool choice common to all dialects. */
export type ToolChoice = { kind: 'none' } | { kind: 'auto' } | { kind: 'required' } | { kind: 'named', name: string }

/**
 * The grammar of a request: tools win over a structured-output format when a tool may be called.
 * A named tool choice restricts the grammar to that tool (an unknown name is a 400).
 */
export function grammarFor (tools: ToolDefinition[], choice: ToolChoice, format: GrammarSpec | undefined): GrammarSpec | undefined {
  if (tools.length > 0 && choice.kind !== 'none') {
    if (choice.kind === 'named') {
      const tool = tools.find((t) => t.name === choice.name)
      if (tool === undefined) throw new InvalidRequestError(`tool_choice names '${choice.name}', which is not in tools`, 'tool_choice')
      return { kind: 'tool_call', tools: [tool], required: true }
    }
    return { kind: 'tool_call', tools, required: choice.kind === 'required' }
  }
  return format
}

/** Fails if tool names repeat (the tool-call grammar could not tell them apart). */
export function checkUniqueToolNames (tools: ToolDefinition[]): void {
  const seen = new Set<string>()
  for (const t of tools) {
    if (seen.has(t.name)) throw new InvalidRequestError(`tool '${t.name}' is defined twice`, 'tools')
    seen.add(t.name)
  }
}

/** Result of a whole generation. */
export interface CollectedGeneration {
  text: string
  finishReason: FinishReason
  usage: Usage
  toolCalls: ToolCall[] | undefined
  stopSequence: string | undefined
}

/** Drains the events of a generation into one result. */
export async function collectGeneration (events: AsyncIterable<GenerationEvent>): Promise<CollectedGeneration> {
  let text = ''
  for await (const ev of events) {
    if (ev.type === 'token') text += ev.text
    else return { text, finishReason: ev.finishReason, usage: ev.usage, toolCalls: ev.toolCalls, stopSequence: ev.stopSequence }
  }
  throw new Error('generation ended without a done event')
}

/** Unix seconds. */
export function unixSeconds (): number {
  return Math.floor(Date.now() / 1000)
}

/** Tool-call arguments as an object (Anthropic `input`, Ollama `arguments`); `{}` if not a JSON object. */
export function argumentsObject (json: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(json)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {}
  } catch {
    return {} // the service produced non-JSON arguments: report an empty call rather than fail the response
  }
}

/**
 * OpenAI's sampling fields (chat and legacy completions) → SamplingParams; absent fields keep the sampler's
 * defaults. A seed is taken modulo 2^32 here, as the sampler's PRNG takes it, so that any integer the API
 * accepts (negative ones too) is also a valid seed on the inference protocol (u32).
 */
export function openAiSampling (b: { temperature?: number | null, top_p?: number | null, seed?: number | null, presence_penalty?: number | null, frequency_penalty?: number | null }): SamplingParams {
  return {
    ...(b.temperature != null ? { temperature: b.temperature } : {}),
    ...(b.top_p != null ? { topP: b.top_p } : {}),
    ...(b.seed != null ? { seed: b.seed >>> 0 } : {}),
    ...(b.presence_penalty != null ? { presencePenalty: b.presence_penalty } : {}),
    ...(b.frequency_penalty != null ? { frequencyPenalty: b.frequency_penalty } : {})
  }
}
