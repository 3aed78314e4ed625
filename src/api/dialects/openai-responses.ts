import { z } from 'zod'
import { asModelId, asRequestId } from '../../shared/ids.js'
import { InvalidRequestError } from '../../shared/errors/api-errors.js'
import {
  checkUniqueToolNames, collectGeneration, DEFAULT_MAX_TOKENS, grammarFor, jsonSchemaField, maxTokensField, modelField,
  newId, parseBody, temperatureField, toolNameField, topPField, unixSeconds
} from './common.js'
import { optionalGrammar } from './openai.js'
import type { ToolChoice } from './common.js'
import type { StreamSink } from '../sse.js'
import type { ChatMessage, GenerationEvent, GrammarSpec, InferenceRequest, ToolCall, ToolDefinition, Usage } from '../../shared/inference.js'

/** OpenAI Responses API: POST /v1/responses (stateless: no previous_response_id, no store). */

const textPart = z.object({ type: z.enum(['input_text', 'output_text', 'text']), text: z.string() })
const messageItem = z.object({
  type: z.literal('message').optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: z.union([z.string(), z.array(textPart).max(10_000)])
})
const functionCallItem = z.object({
  type: z.literal('function_call'), call_id: z.string().max(256), name: toolNameField, arguments: z.string()
})
const functionCallOutputItem = z.object({
  type: z.literal('function_call_output'), call_id: z.string().max(256), output: z.string()
})
const item = z.union([functionCallItem, functionCallOutputItem, messageItem])
const tool = z.object({
  type: z.literal('function'), name: toolNameField, description: z.string().max(100_000).nullish(), parameters: jsonSchemaField.nullish(), strict: z.boolean().nullish()
})
const format = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({ type: z.literal('json_schema'), name: z.string().max(256), schema: jsonSchemaField, strict: z.boolean().nullish(), description: z.string().nullish() })
])

export const responsesBody = z.object({
  model: modelField,
  input: z.union([z.string(), z.array(item).min(1).max(10_000)]),
  instructions: z.string().nullish(),
  max_output_tokens: maxTokensField.nullish(),
  temperature: temperatureField.nullish(),
  top_p: topPField.nullish(),
  stream: z.boolean().nullish(),
  tools: z.array(tool).max(128).nullish(),
  tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), name: toolNameField })]).nullish(),
  text: z.object({ format: format.nullish() }).nullish(),
  previous_response_id: z.string().nullish(),
  store: z.boolean().nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  user: z.string().max(1024).nullish()
})
type ResponsesBody = z.infer<typeof responsesBody>

export interface ResponsesCall {
  request: InferenceRequest
  stream: boolean
  body: ResponsesBody
}

export function toInferenceRequest (body: unknown, id = newId('resp_')): ResponsesCall {
  const b = parseBody(responsesBody, body)
  if (b.previous_response_id != null) throw new InvalidRequestError('previous_response_id is not supported (responses are not stored)', 'previous_response_id')
  const tools: ToolDefinition[] = (b.tools ?? []).map((t) => ({
    name: t.name, ...(t.description != null ? { description: t.description } : {}), parameters: t.parameters ?? {}
  }))
  checkUniqueToolNames(tools)
  const messages: ChatMessage[] = []
  if (b.instructions != null && b.instructions !== '') messages.push({ role: 'system', content: b.instructions })
  if (typeof b.input === 'string') messages.push({ role: 'user', content: b.input })
  else for (const it of b.input) messages.push(toMessage(it))
  const choice: ToolChoice = b.tool_choice == null || b.tool_choice === 'auto' ? { kind: 'auto' }
    : b.tool_choice === 'none' ? { kind: 'none' } : b.tool_choice === 'required' ? { kind: 'required' }
      : { kind: 'named', name: b.tool_choice.name }
  return {
    request: {
      id: asRequestId(id),
      model: asModelId(b.model),
      prompt: { kind: 'chat', messages, ...(tools.length > 0 ? { tools } : {}) },
      maxTokens: b.max_output_tokens ?? DEFAULT_MAX_TOKENS,
      sampling: {
        ...(b.temperature != null ? { temperature: b.temperature } : {}),
        ...(b.top_p != null ? { topP: b.top_p } : {})
      },
      stop: [],
      ...optionalGrammar(grammarFor(tools, choice, toFormat(b.text?.format)))
    },
    stream: b.stream === true,
    body: b
  }
}

function toMessage (it: z.infer<typeof item>): ChatMessage {
  if (it.type === 'function_call') return { role: 'assistant', content: '', toolCalls: [{ id: it.call_id, name: it.name, arguments: it.arguments }] }
  if (it.type === 'function_call_output') return { role: 'tool', content: it.output, toolCallId: it.call_id }
  const text = typeof it.content === 'string' ? it.content : it.content.map((p) => p.text).join('')
  return { role: it.role === 'developer' ? 'system' : it.role, content: text }
}

function toFormat (f: z.infer<typeof format> | null | undefined): GrammarSpec | undefined {
  if (f == null || f.type === 'text') return undefined
  if (f.type === 'json_object') return { kind: 'json' }
  return { kind: 'json_schema', schema: f.schema }
}

/** The response object, in_progress (no output yet) or final. */
function responseObject (call: ResponsesCall, createdAt: number, status: 'in_progress' | 'completed' | 'incomplete', output: unknown[], usage: Usage | null): Record<string, unknown> {
  const b = call.body
  return {
    id: call.request.id,
    object: 'response',
    created_at: createdAt,
    status,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    model: call.request.model,
    output,
    parallel_tool_calls: b.parallel_tool_calls ?? true,
    previous_response_id: null,
    temperature: b.temperature ?? null,
    top_p: b.top_p ?? null,
    tool_choice: b.tool_choice ?? 'auto',
    tools: b.tools ?? [],
    text: { format: b.text?.format ?? { type: 'text' } },
    metadata: b.metadata ?? {},
    usage: usage === null ? null : {
      input_tokens: usage.promptTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: usage.completionTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: usage.promptTokens + usage.completionTokens
    }
  }
}

const messageOutput = (id: string, text: string, status: string): unknown => ({
  type: 'message', id, status, role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }]
})
const callOutput = (c: ToolCall): unknown => ({
  type: 'function_call', id: `fc_${c.id}`, call_id: c.id, name: c.name, arguments: c.arguments, status: 'completed'
})

export async function collectResponse (events: AsyncIterable<GenerationEvent>, call: ResponsesCall): Promise<unknown> {
  const g = await collectGeneration(events)
  const output = g.toolCalls !== undefined ? g.toolCalls.map(callOutput) : [messageOutput(newId('msg_'), g.text, 'completed')]
  return responseObject(call, unixSeconds(), g.finishReason === 'length' ? 'incomplete' : 'completed', output, g.usage)
}

/** SSE event sequence of the Responses API (each event named by its `type`, with a sequence_number). */
export async function streamResponse (events: AsyncIterable<GenerationEvent>, sink: StreamSink, call: ResponsesCall): Promise<void> {
  const createdAt = unixSeconds()
  let seq = 0
  const emit = async (type: string, fields: Record<string, unknown>): Promise<void> => { await sink.send({ type, sequence_number: seq++, ...fields }, type) }
  await emit('response.created', { response: responseObject(call, createdAt, 'in_progress', [], null) })
  await emit('response.in_progress', { response: responseObject(call, createdAt, 'in_progress', [], null) })
  const msgId = newId('msg_')
  let text = ''
  let opened = false
  const open = async (): Promise<void> => {
    if (opened) return
    opened = true
    await emit('response.output_item.added', { output_index: 0, item: { type: 'message', id: msgId, status: 'in_progress', role: 'assistant', content: [] } })
    await emit('response.content_part.added', { item_id: msgId, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } })
  }
  for await (const ev of events) {
    if (ev.type === 'token') {
      await open()
      if (ev.text !== '') await emit('response.output_text.delta', { item_id: msgId, output_index: 0, content_index: 0, delta: ev.text, logprobs: [] })
      text += ev.text
      continue
    }
    const output: unknown[] = []
    if (ev.toolCalls !== undefined) {
      for (const [i, c] of ev.toolCalls.entries()) {
        const done = callOutput(c)
        await emit('response.output_item.added', { output_index: i, item: { ...(done as object), arguments: '', status: 'in_progress' } })
        await emit('response.function_call_arguments.delta', { item_id: `fc_${c.id}`, output_index: i, delta: c.arguments })
        await emit('response.function_call_arguments.done', { item_id: `fc_${c.id}`, output_index: i, arguments: c.arguments })
        await emit('response.output_item.done', { output_index: i, item: done })
        output.push(done)
      }
    } else {
      await open()
      await emit('response.output_text.done', { item_id: msgId, output_index: 0, content_index: 0, text, logprobs: [] })
      await emit('response.content_part.done', { item_id: msgId, output_index: 0, content_index: 0, part: { type: 'output_text', text, annotations: [] } })
      const item = messageOutput(msgId, text, 'completed')
      await emit('response.output_item.done', { output_index: 0, item })
      output.push(item)
    }
    const status = ev.finishReason === 'length' ? 'incomplete' : 'completed'
    await emit(status === 'completed' ? 'response.completed' : 'response.incomplete', { response: responseObject(call, createdAt, status, output, ev.usage) })
    return
  }
}
