import { z } from 'zod'
import { asModelId, asRequestId } from '../../shared/ids.js'
import { InvalidRequestError } from '../../shared/errors/api-errors.js'
import {
  collectGeneration, maxTokensField, modelField, newId, parseBody, penaltyField, seedField, stopField, stopList,
  temperatureField, topPField, unixSeconds, openAiSampling
} from './common.js'
import { openAiFinishReason } from './openai.js'
import type { StreamSink } from '../sse.js'
import type { GenerationEvent, InferenceRequest, ModelInfo } from '../../shared/inference.js'

/** OpenAI legacy completions (POST /v1/completions) and the model list (GET /v1/models). */

/** OpenAI's documented default for /v1/completions. */
const COMPLETIONS_DEFAULT_MAX_TOKENS = 16

export const completionBody = z.object({
  model: modelField,
  prompt: z.union([z.string(), z.array(z.string()).length(1)]),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: maxTokensField.nullish(),
  temperature: temperatureField.nullish(),
  top_p: topPField.nullish(),
  seed: seedField.nullish(),
  stop: stopField.nullish(),
  presence_penalty: penaltyField.nullish(),
  frequency_penalty: penaltyField.nullish(),
  n: z.number().int().nullish(),
  best_of: z.number().int().nullish(),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  logprobs: z.number().int().nullish(),
  user: z.string().max(1024).nullish()
})

export interface CompletionCall {
  request: InferenceRequest
  stream: boolean
  includeUsage: boolean
  /** text to put before the completion (echo: true) */
  echoText: string
}

export function toInferenceRequest (body: unknown, id = newId('cmpl-')): CompletionCall {
  const b = parseBody(completionBody, body)
  if (b.n != null && b.n !== 1) throw new InvalidRequestError(`n=${b.n} is not supported; only n=1`, 'n')
  if (b.best_of != null && b.best_of !== 1) throw new InvalidRequestError('best_of is not supported', 'best_of')
  if (b.suffix != null && b.suffix !== '') throw new InvalidRequestError('suffix (insertion) is not supported', 'suffix')
  if (b.logprobs != null) throw new InvalidRequestError('logprobs is not supported', 'logprobs')
  const text = typeof b.prompt === 'string' ? b.prompt : b.prompt[0] ?? ''
  return {
    request: {
      id: asRequestId(id),
      model: asModelId(b.model),
      prompt: { kind: 'text', text },
      maxTokens: b.max_tokens ?? COMPLETIONS_DEFAULT_MAX_TOKENS,
      sampling: openAiSampling(b),
      stop: stopList(b.stop)
    },
    stream: b.stream === true,
    includeUsage: b.stream_options?.include_usage === true,
    echoText: b.echo === true ? text : ''
  }
}

const usageJson = (u: { promptTokens: number, completionTokens: number }): Record<string, number> =>
  ({ prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens })

export async function collectResponse (events: AsyncIterable<GenerationEvent>, call: CompletionCall): Promise<unknown> {
  const g = await collectGeneration(events)
  return {
    id: call.request.id,
    object: 'text_completion',
    created: unixSeconds(),
    model: call.request.model,
    choices: [{ text: call.echoText + g.text, index: 0, logprobs: null, finish_reason: openAiFinishReason(g.finishReason) }],
    usage: usageJson(g.usage)
  }
}

export async function streamResponse (events: AsyncIterable<GenerationEvent>, sink: StreamSink, call: CompletionCall): Promise<void> {
  const created = unixSeconds()
  const chunk = (text: string, finishReason: string | null): unknown => ({
    id: call.request.id, object: 'text_completion', created, model: call.request.model,
    choices: [{ text, index: 0, logprobs: null, finish_reason: finishReason }]
  })
  if (call.echoText !== '') await sink.send(chunk(call.echoText, null))
  for await (const ev of events) {
    if (ev.type === 'token') { if (ev.text !== '') await sink.send(chunk(ev.text, null)); continue }
    await sink.send(chunk('', openAiFinishReason(ev.finishReason)))
    if (call.includeUsage) {
      await sink.send({ id: call.request.id, object: 'text_completion', created, model: call.request.model, choices: [], usage: usageJson(ev.usage) })
    }
    await sink.sendRaw('[DONE]')
    return
  }
}

/** GET /v1/models body. `created` is not tracked for models: 0. */
export function modelList (models: ModelInfo[]): unknown {
  return { object: 'list', data: models.map(modelJson) }
}

export function modelJson (m: ModelInfo): unknown {
  return { id: m.id, object: 'model', created: 0, owned_by: 'exo-p2p', context_length: m.contextLength, held_by: m.heldBy }
}
