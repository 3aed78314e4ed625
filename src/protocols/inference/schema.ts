import { z } from 'zod'
import { ProtocolDecodeError } from '../../shared/errors/protocol-errors.js'
import { asModelId, asRequestId } from '../../shared/ids.js'
import type { GenerationEvent, GrammarSpec, InferenceRequest, SamplingParams } from '../../shared/inference.js'

/** Wire validation of the JSON bodies of protocols/inference.md (also OPEN's sampling/grammar in activations.md). */

/** Request ids on the wire: 1–128 of `[A-Za-z0-9._:-]`. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/
const finite = z.number().finite()
const nonNegInt = z.number().int().nonnegative()

export const samplingSchema = z.strictObject({
  temperature: finite.nonnegative().optional(),
  topK: nonNegInt.optional(),
  topP: finite.min(0).max(1).optional(),
  minP: finite.min(0).max(1).optional(),
  repeatPenalty: finite.nonnegative().optional(),
  penaltyLastN: nonNegInt.optional(),
  presencePenalty: finite.optional(),
  frequencyPenalty: finite.optional(),
  seed: z.number().int().min(0).max(0xffffffff).optional()
})

const jsonObject = z.record(z.string(), z.unknown())

const toolDefinition = z.strictObject({
  name: z.string().min(1).max(256),
  description: z.string().optional(),
  parameters: jsonObject
})

const toolCall = z.strictObject({ id: z.string().max(256), name: z.string().max(256), arguments: z.string() })

export const grammarSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('json') }),
  z.strictObject({ kind: z.literal('json_schema'), schema: jsonObject }),
  z.strictObject({ kind: z.literal('gbnf'), grammar: z.string() }),
  z.strictObject({ kind: z.literal('tool_call'), tools: z.array(toolDefinition), required: z.boolean() })
])

const chatMessage = z.strictObject({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string(),
  toolCalls: z.array(toolCall).optional(),
  toolCallId: z.string().optional(),
  name: z.string().optional()
})

const requestSchema = z.strictObject({
  id: z.string().regex(REQUEST_ID_PATTERN),
  model: z.string().min(1).max(256),
  prompt: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('chat'), messages: z.array(chatMessage).min(1), tools: z.array(toolDefinition).optional() }),
    z.strictObject({ kind: z.literal('text'), text: z.string() })
  ]),
  maxTokens: z.number().int().min(1).max(1 << 24),
  sampling: samplingSchema,
  stop: z.array(z.string().min(1)).max(64),
  grammar: grammarSchema.optional(),
  resumeTokens: z.array(z.number().int().min(0).max(0xffffffff)).max(1 << 24).optional()
}).refine((r) => r.resumeTokens === undefined || r.resumeTokens.length < r.maxTokens, { message: 'resumeTokens must be fewer than maxTokens', path: ['resumeTokens'] })

const usage = z.strictObject({ promptTokens: nonNegInt, completionTokens: nonNegInt })
const doneSchema = z.strictObject({
  finishReason: z.enum(['stop', 'length', 'tool_calls', 'cancelled', 'error']),
  usage,
  toolCalls: z.array(toolCall).optional()
})

export const ERROR_CODE_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/
export const MAX_ERROR_MESSAGE_CHARS = 4096
const errorSchema = z.strictObject({
  code: z.string().regex(ERROR_CODE_PATTERN),
  message: z.string().max(MAX_ERROR_MESSAGE_CHARS)
})

function parse<T> (schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value)
  if (r.success) return r.data
  const issue = r.error.issues[0]
  throw new ProtocolDecodeError(`${what}: ${issue === undefined ? 'invalid' : `${issue.path.join('.') || '(root)'}: ${issue.message}`}`)
}

export function parseInferenceRequest (value: unknown): InferenceRequest {
  const r = parse(requestSchema, value, 'REQUEST')
  return { ...r, id: asRequestId(r.id), model: asModelId(r.model) }
}

export function parseSampling (value: unknown, what: string): SamplingParams { return parse(samplingSchema, value, what) }
export function parseGrammar (value: unknown, what: string): GrammarSpec { return parse(grammarSchema, value, what) }

export function parseDone (value: unknown): Extract<GenerationEvent, { type: 'done' }> {
  return { type: 'done', ...parse(doneSchema, value, 'DONE') }
}

export function parseError (value: unknown): { code: string, message: string } {
  return parse(errorSchema, value, 'ERROR')
}
