import { z } from 'zod'
import { asModelId, asRequestId } from '../../shared/ids.js'
import { InvalidRequestError } from '../../shared/errors/api-errors.js'
import {
  checkUniqueToolNames, collectGeneration, DEFAULT_MAX_TOKENS, grammarFor, jsonSchemaField, maxTokensField, modelField,
  newId, parseBody, penaltyField, seedField, stopField, stopList, temperatureField, toolNameField, topPField, unixSeconds, openAiSampling
} from './common.js'
import type { ToolChoice } from './common.js'
import type { StreamSink } from '../sse.js'
import type { ChatMessage, FinishReason, GenerationEvent, GrammarSpec, InferenceRequest, ToolDefinition } from '../../shared/inference.js'

/** OpenAI chat completions: POST /v1/chat/completions. */

const textPart = z.object({ type: z.literal('text'), text: z.string() })
const content = z.union([z.string(), z.array(textPart).max(10_000)])
const toolCallIn = z.object({
  id: z.string().max(256),
  type: z.literal('function').optional(),
  function: z.object({ name: toolNameField, arguments: z.string() })
})
const message = z.discriminatedUnion('role', [
  z.object({ role: z.enum(['system', 'developer']), content, name: z.string().max(256).optional() }),
  z.object({ role: z.literal('user'), content, name: z.string().max(256).optional() }),
  z.object({
    role: z.literal('assistant'),
    content: content.nullish(),
    name: z.string().max(256).optional(),
    tool_calls: z.array(toolCallIn).max(128).nullish()
  }),
  z.object({ role: z.literal('tool'), content, tool_call_id: z.string().max(256) })
])
const tool = z.object({
  type: z.literal('function'),
  function: z.object({ name: toolNameField, description: z.string().max(100_000).optional(), parameters: jsonSchemaField.optional(), strict: z.boolean().nullish() })
})
const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: toolNameField }) })
])
const responseFormat = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    json_schema: z.object({ name: z.string().max(256), description: z.string().optional(), schema: jsonSchemaField.optional(), strict: z.boolean().nullish() })
  })
])

export const chatCompletionBody = z.object({
  model: modelField,
  messages: z.array(message).min(1).max(10_000),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: maxTokensField.nullish(),
  max_completion_tokens: maxTokensField.nullish(),
  temperature: temperatureField.nullish(),
  top_p: topPField.nullish(),
  seed: seedField.nullish(),
  stop: stopField.nullish(),
  presence_penalty: penaltyField.nullish(),
  frequency_penalty: penaltyField.nullish(),
  n: z.number().int().nullish(),
  response_format: responseFormat.nullish(),
  tools: z.array(tool).max(128).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().nullish(),
  user: z.string().max(1024).nullish()
})
export type ChatCompletionBody = z.infer<typeof chatCompletionBody>

/** What the responders need besides the events. */
export interface ChatCompletionCall {
  request: InferenceRequest
  stream: boolean
  includeUsage: boolean
}

/** Pure: validated OpenAI chat body → the internal request. Throws InvalidRequestError (400). */
export function toInferenceRequest (body: unknown, id = newId('chatcmpl-')): ChatCompletionCall {
  const b = parseBody(chatCompletionBody, body)
  if (b.n !== undefined && b.n !== null && b.n !== 1) throw new InvalidRequestError(`n=${b.n} is not supported; only n=1`, 'n')
  if (b.logprobs === true || (b.top_logprobs ?? 0) > 0) throw new InvalidRequestError('logprobs are not supported', 'logprobs')
  const tools: ToolDefinition[] = (b.tools ?? []).map((t) => ({
    name: t.function.name,
    ...(t.function.description !== undefined ? { description: t.function.description } : {}),
    parameters: t.function.parameters ?? {}
  }))
  checkUniqueToolNames(tools)
  const messages: ChatMessage[] = b.messages.map(toChatMessage)
  return {
    request: {
      id: asRequestId(id),
      model: asModelId(b.model),
      prompt: { kind: 'chat', messages, ...(tools.length > 0 ? { tools } : {}) },
      maxTokens: b.max_completion_tokens ?? b.max_tokens ?? DEFAULT_MAX_TOKENS,
      sampling: openAiSampling(b),
      stop: stopList(b.stop),
      ...optionalGrammar(grammarFor(tools, toToolChoice(b.tool_choice), toFormat(b.response_format)))
    },
    stream: b.stream === true,
    includeUsage: b.stream_options?.include_usage === true
  }
}

export function optionalGrammar (grammar: GrammarSpec | undefined): { grammar?: GrammarSpec } {
  return grammar === undefined ? {} : { grammar }
}

function toChatMessage (m: z.infer<typeof message>): ChatMessage {
  const text = (c: z.infer<typeof content> | null | undefined): string =>
    c === null || c === undefined ? '' : typeof c === 'string' ? c : c.map((p) => p.text).join('')
  switch (m.role) {
    case 'system': case 'developer': return { role: 'system', content: text(m.content) }
    case 'user': return { role: 'user', content: text(m.content), ...(m.name !== undefined ? { name: m.name } : {}) }
    case 'tool': return { role: 'tool', content: text(m.content), toolCallId: m.tool_call_id }
    case 'assistant': {
      const calls = (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }))
      return { role: 'assistant', content: text(m.content), ...(calls.length > 0 ? { toolCalls: calls } : {}) }
    }
  }
}

function toToolChoice (c: ChatCompletionBody['tool_choice']): ToolChoice {
  if (c === undefined || c === null || c === 'auto') return { kind: 'auto' }
  if (c === 'none') return { kind: 'none' }
  if (c === 'required') return { kind: 'required' }
  return { kind: 'named', name: c.function.name }
}

function toFormat (f: ChatCompletionBody['response_format']): GrammarSpec | undefined {
  if (f === undefined || f === null || f.type === 'text') return undefined
  if (f.type === 'json_object') return { kind: 'json' }
  return f.json_schema.schema === undefined ? { kind: 'json' } : { kind: 'json_schema', schema: f.json_schema.schema }
}

export function openAiFinishReason (r: FinishReason): string {
  if (r === 'length') return 'length'
  if (r === 'tool_calls') return 'tool_calls'
  return 'stop'
}

function usageJson (u: { promptTokens: number, completionTokens: number }): Record<string, number> {
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens }
}

/** Non-streaming response body. */
export async function collectResponse (events: AsyncIterable<GenerationEvent>, call: ChatCompletionCall): Promise<unknown> {
  const g = await collectGeneration(events)
  const toolCalls = g.toolCalls?.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }))
  return {
    id: call.request.id,
    object: 'chat.completion',
    created: unixSeconds(),
    model: call.request.model,
    choices: [{
      index: 0,
      message: { role: 'assistant', content: toolCalls !== undefined ? null : g.text, refusal: null, ...(toolCalls !== undefined ? { tool_calls: toolCalls } : {}) },
      logprobs: null,
      finish_reason: openAiFinishReason(g.finishReason)
    }],
    usage: usageJson(g.usage)
  }
}

/** SSE: role chunk, content chunks, tool_calls chunk, finish chunk, optional usage chunk, [DONE]. */
export async function streamResponse (events: AsyncIterable<GenerationEvent>, sink: StreamSink, call: ChatCompletionCall): Promise<void> {
  const created = unixSeconds()
  const chunk = (delta: unknown, finishReason: string | null): unknown => ({
    id: call.request.id, object: 'chat.completion.chunk', created, model: call.request.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(call.includeUsage ? { usage: null } : {})
  })
  await sink.send(chunk({ role: 'assistant', content: '' }, null))
  for await (const ev of events) {
    if (ev.type === 'token') { if (ev.text !== '') await sink.send(chunk({ content: ev.text }, null)); continue }
    if (ev.toolCalls !== undefined) {
      await sink.send(chunk({
        tool_calls: ev.toolCalls.map((c, index) => ({ index, id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }))
      }, null))
    }
    await sink.send(chunk({}, openAiFinishReason(ev.finishReason)))
    if (call.includeUsage) {
      await sink.send({ id: call.request.id, object: 'chat.completion.chunk', created, model: call.request.model, choices: [], usage: usageJson(ev.usage) })
    }
    await sink.sendRaw('[DONE]')
    return
  }
}
