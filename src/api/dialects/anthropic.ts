import { z } from 'zod'
import { asModelId, asRequestId } from '../../shared/ids.js'
import {
  checkUniqueToolNames, collectGeneration, grammarFor, jsonSchemaField, maxTokensField, modelField, newId, parseBody,
  stopList, topKField, topPField, toolNameField
} from './common.js'
import { optionalGrammar } from './openai.js'
import type { ToolChoice } from './common.js'
import type { StreamSink } from '../sse.js'
import type { ChatMessage, FinishReason, GenerationEvent, InferenceRequest, ToolDefinition } from '../../shared/inference.js'

/** Anthropic Messages: POST /v1/messages and POST /v1/messages/count_tokens. */

const textBlock = z.object({ type: z.literal('text'), text: z.string() })
const toolUseBlock = z.object({ type: z.literal('tool_use'), id: z.string().max(256), name: toolNameField, input: z.record(z.string(), z.unknown()) })
const toolResultBlock = z.object({
  type: z.literal('tool_result'),
  tool_use_id: z.string().max(256),
  content: z.union([z.string(), z.array(textBlock).max(10_000)]).optional(),
  is_error: z.boolean().optional()
})
const block = z.discriminatedUnion('type', [textBlock, toolUseBlock, toolResultBlock])
const message = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string(), z.array(block).max(10_000)])
})
const tool = z.object({ name: toolNameField, description: z.string().max(100_000).optional(), input_schema: jsonSchemaField })
const toolChoice = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal('none') }),
  z.object({ type: z.literal('tool'), name: toolNameField, disable_parallel_tool_use: z.boolean().optional() })
])
const system = z.union([z.string(), z.array(textBlock).max(1000)])

const promptFields = {
  model: modelField,
  messages: z.array(message).min(1).max(10_000),
  system: system.optional(),
  tools: z.array(tool).max(128).optional(),
  tool_choice: toolChoice.optional()
}
export const messagesBody = z.object({
  ...promptFields,
  max_tokens: maxTokensField,
  stop_sequences: z.array(z.string().max(1024)).max(16).optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: topPField.optional(),
  top_k: topKField.optional(),
  stream: z.boolean().optional(),
  metadata: z.object({ user_id: z.string().max(256).nullish() }).optional()
})
export const countTokensBody = z.object(promptFields)

export interface MessagesCall {
  request: InferenceRequest
  stream: boolean
}

export function toInferenceRequest (body: unknown, id = newId('msg_')): MessagesCall {
  const b = parseBody(messagesBody, body)
  const { prompt, grammar } = toPrompt(b)
  return {
    request: {
      id: asRequestId(id),
      model: asModelId(b.model),
      prompt,
      maxTokens: b.max_tokens,
      sampling: {
        ...(b.temperature !== undefined ? { temperature: b.temperature } : {}),
        ...(b.top_p !== undefined ? { topP: b.top_p } : {}),
        ...(b.top_k !== undefined ? { topK: b.top_k } : {})
      },
      stop: stopList(b.stop_sequences),
      ...optionalGrammar(grammar)
    },
    stream: b.stream === true
  }
}

/** count_tokens: just the model and the prompt. */
export function toCountTokensRequest (body: unknown): Pick<InferenceRequest, 'model' | 'prompt'> {
  const b = parseBody(countTokensBody, body)
  return { model: asModelId(b.model), prompt: toPrompt(b).prompt }
}

function toPrompt (b: z.infer<typeof countTokensBody>): { prompt: InferenceRequest['prompt'], grammar: InferenceRequest['grammar'] } {
  const tools: ToolDefinition[] = (b.tools ?? []).map((t) => ({ name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.input_schema }))
  checkUniqueToolNames(tools)
  const messages: ChatMessage[] = []
  if (b.system !== undefined) {
    const text = typeof b.system === 'string' ? b.system : b.system.map((s) => s.text).join('\n')
    if (text !== '') messages.push({ role: 'system', content: text })
  }
  for (const m of b.messages) messages.push(...toMessages(m))
  const c = b.tool_choice
  const choice: ToolChoice = c === undefined || c.type === 'auto' ? { kind: 'auto' } : c.type === 'none' ? { kind: 'none' }
    : c.type === 'any' ? { kind: 'required' } : { kind: 'named', name: c.name }
  return { prompt: { kind: 'chat', messages, ...(tools.length > 0 ? { tools } : {}) }, grammar: grammarFor(tools, choice, undefined) }
}

/** One Anthropic message may hold text, tool calls and tool results: split into internal messages. */
function toMessages (m: z.infer<typeof message>): ChatMessage[] {
  if (typeof m.content === 'string') return [{ role: m.role, content: m.content }]
  const out: ChatMessage[] = []
  let text = ''
  const calls: NonNullable<ChatMessage['toolCalls']> = []
  for (const b of m.content) {
    if (b.type === 'text') text += b.text
    else if (b.type === 'tool_use') calls.push({ id: b.id, name: b.name, arguments: JSON.stringify(b.input) })
    else {
      const content = b.content === undefined ? '' : typeof b.content === 'string' ? b.content : b.content.map((t) => t.text).join('')
      out.push({ role: 'tool', content, toolCallId: b.tool_use_id })
    }
  }
  if (text !== '' || calls.length > 0 || out.length === 0) {
    out.push({ role: m.role, content: text, ...(calls.length > 0 ? { toolCalls: calls } : {}) })
  }
  return out
}

function stopReason (r: FinishReason, stopSequence: string | undefined): string {
  if (r === 'length') return 'max_tokens'
  if (r === 'tool_calls') return 'tool_use'
  return stopSequence !== undefined ? 'stop_sequence' : 'end_turn'
}

function toolUse (c: { id: string, name: string, arguments: string }): Record<string, unknown> {
  return { type: 'tool_use', id: c.id.startsWith('toolu_') ? c.id : `toolu_${c.id}`, name: c.name, input: JSON.parse(c.arguments) as unknown }
}

export async function collectResponse (events: AsyncIterable<GenerationEvent>, call: MessagesCall): Promise<unknown> {
  const g = await collectGeneration(events)
  const content = g.toolCalls !== undefined ? g.toolCalls.map(toolUse) : [{ type: 'text', text: g.text }]
  return {
    id: call.request.id,
    type: 'message',
    role: 'assistant',
    model: call.request.model,
    content,
    stop_reason: stopReason(g.finishReason, g.stopSequence),
    stop_sequence: g.stopSequence ?? null,
    usage: { input_tokens: g.usage.promptTokens, output_tokens: g.usage.completionTokens }
  }
}

/** message_start, content_block_start/delta/stop per block, message_delta, message_stop. */
export async function streamResponse (events: AsyncIterable<GenerationEvent>, sink: StreamSink, call: MessagesCall, promptTokens?: number): Promise<void> {
  const emit = async (type: string, fields: Record<string, unknown>): Promise<void> => { await sink.send({ type, ...fields }, type) }
  await emit('message_start', {
    message: {
      id: call.request.id, type: 'message', role: 'assistant', model: call.request.model, content: [],
      stop_reason: null, stop_sequence: null, usage: { input_tokens: promptTokens ?? 0, output_tokens: 0 }
    }
  })
  let textOpen = false
  let index = 0
  for await (const ev of events) {
    if (ev.type === 'token') {
      if (!textOpen) {
        textOpen = true
        await emit('content_block_start', { index, content_block: { type: 'text', text: '' } })
        await emit('ping', {})
      }
      if (ev.text !== '') await emit('content_block_delta', { index, delta: { type: 'text_delta', text: ev.text } })
      continue
    }
    if (textOpen) { await emit('content_block_stop', { index }); index++ }
    for (const c of ev.toolCalls ?? []) {
      const block = toolUse(c)
      await emit('content_block_start', { index, content_block: { ...block, input: {} } })
      await emit('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: c.arguments } })
      await emit('content_block_stop', { index })
      index++
    }
    if (index === 0) { // nothing generated: still one (empty) text block, as Anthropic does
      await emit('content_block_start', { index, content_block: { type: 'text', text: '' } })
      await emit('content_block_stop', { index })
    }
    await emit('message_delta', {
      delta: { stop_reason: stopReason(ev.finishReason, ev.stopSequence), stop_sequence: ev.stopSequence ?? null },
      usage: { input_tokens: ev.usage.promptTokens, output_tokens: ev.usage.completionTokens }
    })
    await emit('message_stop', {})
    return
  }
}
