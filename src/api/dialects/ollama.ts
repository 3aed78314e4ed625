import { z } from 'zod'
import { asModelId, asRequestId } from '../../shared/ids.js'
import { InvalidRequestError } from '../../shared/errors/api-errors.js'
import {
  checkUniqueToolNames, collectGeneration, DEFAULT_MAX_TOKENS, grammarFor, jsonSchemaField, MAX_TOKENS_LIMIT, modelField,
  newId, parseBody, penaltyField, seedField, stopField, stopList, temperatureField, toolNameField, topKField, topPField
} from './common.js'
import { optionalGrammar } from './openai.js'
import type { StreamSink } from '../sse.js'
import type { ChatMessage, GenerationEvent, GrammarSpec, InferenceRequest, ModelInfo, SamplingParams, ToolDefinition } from '../../shared/inference.js'

/** Ollama at the root: /api/chat, /api/generate (NDJSON streaming by default), /api/tags, /api/show, /api/ps. */

const options = z.object({
  temperature: temperatureField.optional(),
  top_k: topKField.optional(),
  top_p: topPField.optional(),
  min_p: z.number().min(0).max(1).optional(),
  seed: seedField.optional(),
  // -1 = until the context is full, -2 = fill context: both mean "as many as allowed"
  num_predict: z.number().int().min(-2).max(MAX_TOKENS_LIMIT).optional(),
  stop: stopField.optional(),
  repeat_penalty: z.number().min(0).max(10).optional(),
  repeat_last_n: z.number().int().min(-1).max(1_000_000).optional(),
  presence_penalty: penaltyField.optional(),
  frequency_penalty: penaltyField.optional(),
  num_ctx: z.number().int().min(1).optional(),
  num_thread: z.number().int().min(1).optional()
}).loose() // Ollama accepts many runner options we ignore (num_gpu, mirostat, …)
const format = z.union([z.enum(['json', '']), jsonSchemaField])
const toolCall = z.object({ function: z.object({ name: toolNameField, arguments: z.record(z.string(), z.unknown()) }) })
const message = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string(),
  images: z.array(z.string()).max(0, 'images are not supported').nullish(),
  tool_calls: z.array(toolCall).max(128).nullish(),
  tool_name: z.string().max(256).nullish()
})
const tool = z.object({
  type: z.literal('function'),
  function: z.object({ name: toolNameField, description: z.string().max(100_000).optional(), parameters: jsonSchemaField.optional() })
})
const common = {
  model: modelField,
  format: format.nullish(),
  options: options.nullish(),
  stream: z.boolean().nullish(),
  keep_alive: z.union([z.string(), z.number()]).nullish(),
  think: z.union([z.boolean(), z.string()]).nullish()
}
export const chatBody = z.object({ ...common, messages: z.array(message).max(10_000).default([]), tools: z.array(tool).max(128).nullish() })
export const generateBody = z.object({
  ...common,
  prompt: z.string().default(''),
  suffix: z.string().nullish(),
  system: z.string().nullish(),
  template: z.string().nullish(),
  raw: z.boolean().nullish(),
  images: z.array(z.string()).max(0, 'images are not supported').nullish(),
  context: z.array(z.number().int()).nullish()
})
export const showBody = z.object({ model: modelField.optional(), name: modelField.optional(), verbose: z.boolean().nullish() })

export interface OllamaCall {
  request: InferenceRequest
  stream: boolean
  kind: 'chat' | 'generate'
  /** an empty prompt/messages: Ollama answers "loaded" without generating */
  loadOnly: boolean
}

/** Ollama names may carry a tag; `:latest` is the same model. */
export function ollamaModelName (name: string): string {
  return name.endsWith(':latest') ? name.slice(0, -':latest'.length) : name
}

function sampling (o: z.infer<typeof options> | null | undefined): SamplingParams {
  if (o == null) return {}
  return {
    ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
    ...(o.top_k !== undefined ? { topK: o.top_k } : {}),
    ...(o.top_p !== undefined ? { topP: o.top_p } : {}),
    ...(o.min_p !== undefined ? { minP: o.min_p } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.repeat_penalty !== undefined ? { repeatPenalty: o.repeat_penalty } : {}),
    ...(o.repeat_last_n !== undefined && o.repeat_last_n >= 0 ? { penaltyLastN: o.repeat_last_n } : {}),
    ...(o.presence_penalty !== undefined ? { presencePenalty: o.presence_penalty } : {}),
    ...(o.frequency_penalty !== undefined ? { frequencyPenalty: o.frequency_penalty } : {})
  }
}

function maxTokens (o: z.infer<typeof options> | null | undefined): number {
  const n = o?.num_predict
  if (n === undefined || n < 0) return n === undefined ? DEFAULT_MAX_TOKENS : MAX_TOKENS_LIMIT
  if (n === 0) throw new InvalidRequestError('options.num_predict must not be 0', 'options.num_predict')
  return n
}

function toFormat (f: z.infer<typeof format> | null | undefined): GrammarSpec | undefined {
  if (f == null || f === '') return undefined
  if (f === 'json') return { kind: 'json' }
  return { kind: 'json_schema', schema: f }
}

export function toChatRequest (body: unknown, id = newId('chat-')): OllamaCall {
  const b = parseBody(chatBody, body)
  const tools: ToolDefinition[] = (b.tools ?? []).map((t) => ({ name: t.function.name, ...(t.function.description !== undefined ? { description: t.function.description } : {}), parameters: t.function.parameters ?? {} }))
  checkUniqueToolNames(tools)
  let callCounter = 0
  const messages: ChatMessage[] = b.messages.map((m) => ({
    role: m.role,
    content: m.content,
    ...(m.tool_calls != null && m.tool_calls.length > 0
      ? { toolCalls: m.tool_calls.map((c) => ({ id: `call_${callCounter++}`, name: c.function.name, arguments: JSON.stringify(c.function.arguments) })) }
      : {}),
    ...(m.tool_name != null ? { name: m.tool_name } : {})
  }))
  return {
    request: {
      id: asRequestId(id),
      model: asModelId(ollamaModelName(b.model)),
      prompt: { kind: 'chat', messages, ...(tools.length > 0 ? { tools } : {}) },
      maxTokens: maxTokens(b.options),
      sampling: sampling(b.options),
      stop: stopList(b.options?.stop),
      ...optionalGrammar(grammarFor(tools, { kind: 'auto' }, toFormat(b.format)))
    },
    stream: b.stream !== false,
    kind: 'chat',
    loadOnly: b.messages.length === 0
  }
}

/**
 * /api/generate. Ollama applies the model's template unless `raw`; a model without a chat template
 * has Ollama's default template `{{ .System }} {{ .Prompt }}`: plain text. `hasChatTemplate` comes
 * from the model list.
 */
export function toGenerateRequest (body: unknown, hasChatTemplate: boolean, id = newId('gen-')): OllamaCall {
  const b = parseBody(generateBody, body)
  if (b.suffix != null && b.suffix !== '') throw new InvalidRequestError('suffix (insertion) is not supported', 'suffix')
  if (b.template != null && b.template !== '') throw new InvalidRequestError('template overrides are not supported', 'template')
  if (b.context != null && b.context.length > 0) throw new InvalidRequestError('context (token continuation) is not supported; send the text', 'context')
  const system = b.system ?? ''
  const prompt: InferenceRequest['prompt'] = b.raw === true || !hasChatTemplate
    ? { kind: 'text', text: b.raw === true || system === '' ? b.prompt : `${system}\n\n${b.prompt}` }
    : { kind: 'chat', messages: [...(system !== '' ? [{ role: 'system' as const, content: system }] : []), { role: 'user', content: b.prompt }] }
  return {
    request: {
      id: asRequestId(id),
      model: asModelId(ollamaModelName(b.model)),
      prompt,
      maxTokens: maxTokens(b.options),
      sampling: sampling(b.options),
      stop: stopList(b.options?.stop),
      ...optionalGrammar(toFormat(b.format))
    },
    stream: b.stream !== false,
    kind: 'generate',
    loadOnly: b.prompt === ''
  }
}

function doneFields (ev: Extract<GenerationEvent, { type: 'done' }>, startedAt: bigint): Record<string, unknown> {
  const total = Number(process.hrtime.bigint() - startedAt)
  return {
    done: true,
    done_reason: ev.finishReason === 'length' ? 'length' : 'stop',
    total_duration: total,
    load_duration: 0,
    prompt_eval_count: ev.usage.promptTokens,
    prompt_eval_duration: 0,
    eval_count: ev.usage.completionTokens,
    eval_duration: total
  }
}

function toolCallsJson (ev: Extract<GenerationEvent, { type: 'done' }>): unknown[] | undefined {
  return ev.toolCalls?.map((c) => ({ function: { name: c.name, arguments: JSON.parse(c.arguments) as unknown } }))
}

function piece (call: OllamaCall, text: string, toolCalls?: unknown[]): Record<string, unknown> {
  const base = { model: call.request.model, created_at: new Date().toISOString() }
  return call.kind === 'chat'
    ? { ...base, message: { role: 'assistant', content: text, ...(toolCalls !== undefined ? { tool_calls: toolCalls } : {}) } }
    : { ...base, response: text }
}

export async function collectResponse (events: AsyncIterable<GenerationEvent>, call: OllamaCall): Promise<unknown> {
  const startedAt = process.hrtime.bigint()
  const g = await collectGeneration(events)
  const done = { type: 'done' as const, finishReason: g.finishReason, usage: g.usage, ...(g.toolCalls !== undefined ? { toolCalls: g.toolCalls } : {}) }
  return { ...piece(call, g.toolCalls !== undefined ? '' : g.text, toolCallsJson(done)), ...doneFields(done, startedAt) }
}

export async function streamResponse (events: AsyncIterable<GenerationEvent>, sink: StreamSink, call: OllamaCall): Promise<void> {
  const startedAt = process.hrtime.bigint()
  for await (const ev of events) {
    if (ev.type === 'token') { if (ev.text !== '') await sink.send({ ...piece(call, ev.text), done: false }); continue }
    await sink.send({ ...piece(call, '', toolCallsJson(ev)), ...doneFields(ev, startedAt) })
    return
  }
}

/** Answer to an empty prompt: the model is "loaded", nothing generated. */
export function loadedResponse (call: OllamaCall): unknown {
  return { ...piece(call, ''), done: true, done_reason: 'load' }
}

function details (m: ModelInfo): Record<string, unknown> {
  return { parent_model: '', format: 'gguf', family: m.architecture, families: [m.architecture], parameter_size: '', quantization_level: '' }
}

/** GET /api/tags and GET /api/ps. */
export function tagsResponse (models: ModelInfo[], running: boolean): unknown {
  return {
    models: models.map((m) => ({
      name: `${m.id}:latest`,
      model: `${m.id}:latest`,
      modified_at: new Date(0).toISOString(),
      size: m.sizeBytes,
      digest: '',
      details: details(m),
      ...(running ? { expires_at: new Date(Date.now() + 3_600_000).toISOString(), size_vram: 0 } : {})
    }))
  }
}

/** POST /api/show. */
export function showResponse (m: ModelInfo): unknown {
  return {
    license: '',
    modelfile: `FROM ${m.id}\n`,
    parameters: '',
    template: m.hasChatTemplate ? '(model chat template)' : '{{ .Prompt }}',
    details: details(m),
    model_info: {
      'general.architecture': m.architecture,
      [`${m.architecture}.block_count`]: m.nLayers,
      [`${m.architecture}.context_length`]: m.contextLength
    },
    capabilities: ['completion', 'tools'],
    modified_at: new Date(0).toISOString()
  }
}
