import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'
import { Ollama } from 'ollama'
import { directGeneration } from './helpers/api-server.js'
import { startApiNode } from './helpers/api-node.js'
import { asModelId, asRequestId } from '../../src/shared/ids.js'
import type { ApiNode } from './helpers/api-node.js'
import type { InferenceRequest } from '../../src/shared/inference.js'

/**
 * The official openai, @anthropic-ai/sdk and ollama clients against a real node process (ExoNode: mesh +
 * HTTP + local engine, bundled stories260k-f32) on 127.0.0.1. Greedy output through every dialect equals
 * the engine's own (the same engine run in the test process).
 */
const MODEL = 'stories260k-f32'
const PROMPT = 'Once upon a time'
/** node-llama-cpp's greedy continuation of "Once upon a time" (test/fixtures/models/README.md) */
const REFERENCE_30 = ', there was a little girl named Lily. She loved to play outside in the park. One day,'

let server: ApiNode
let openai: OpenAI
let anthropic: Anthropic
let ollama: Ollama
const chatReq = (maxTokens: number): InferenceRequest => ({
  id: asRequestId('direct'), model: asModelId(MODEL), prompt: { kind: 'chat', messages: [{ role: 'user', content: PROMPT }] }, maxTokens, sampling: { temperature: 0 }, stop: []
})
const textReq = (maxTokens: number): InferenceRequest => ({ ...chatReq(maxTokens), prompt: { kind: 'text', text: PROMPT } })

before(async () => {
  server = await startApiNode()
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 })
  anthropic = new Anthropic({ baseURL: server.url, apiKey: 'unused', maxRetries: 0 })
  ollama = new Ollama({ host: server.url })
})
after(async () => { await server.close() })

describe('OpenAI client', () => {
  it('completions: greedy text equals the engine and node-llama-cpp', async () => {
    const direct = await directGeneration(server.inference, textReq(30))
    const r = await openai.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 30, temperature: 0 })
    assert.equal(r.choices[0]?.text, direct.text)
    assert.equal(r.choices[0]?.text, REFERENCE_30)
    assert.equal(r.choices[0]?.finish_reason, 'length')
    assert.deepEqual(r.usage, { prompt_tokens: direct.promptTokens, completion_tokens: 30, total_tokens: direct.promptTokens + 30 })
    const stream = await openai.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } })
    let text = ''
    let usage: OpenAI.CompletionUsage | undefined | null
    for await (const c of stream) { text += c.choices[0]?.text ?? ''; if (c.usage != null) usage = c.usage }
    assert.equal(text, REFERENCE_30)
    assert.equal(usage?.completion_tokens, 30)
  })

  it('chat: non-streaming and streaming agree with the engine; usage and finish reasons', async () => {
    const direct = await directGeneration(server.inference, chatReq(24))
    assert.ok(direct.text.length > 0)
    const r = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], max_tokens: 24, temperature: 0 })
    assert.equal(r.choices[0]?.message.content, direct.text)
    assert.equal(r.choices[0]?.finish_reason, direct.finishReason === 'length' ? 'length' : 'stop')
    assert.equal(r.usage?.prompt_tokens, direct.promptTokens)
    assert.equal(r.usage?.completion_tokens, direct.completionTokens)
    const stream = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], max_completion_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true } })
    let text = ''
    let finish: string | null | undefined
    let usage: OpenAI.CompletionUsage | undefined | null
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? ''
      finish = c.choices[0]?.finish_reason ?? finish
      if (c.usage != null) usage = c.usage
    }
    assert.equal(text, direct.text)
    assert.equal(finish, r.choices[0]?.finish_reason)
    assert.equal(usage?.total_tokens, r.usage?.total_tokens)
  })

  it('chat: a stop string ends generation before it, finish_reason stop', async () => {
    const r = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], max_tokens: 40, temperature: 0, stop: ['Lily'] })
    const full = await directGeneration(server.inference, chatReq(40))
    const cut = full.text.indexOf('Lily')
    if (cut >= 0) {
      assert.equal(r.choices[0]?.message.content, full.text.slice(0, cut))
      assert.equal(r.choices[0]?.finish_reason, 'stop')
    } else {
      assert.equal(r.choices[0]?.message.content, full.text)
    }
  })

  it('models, responses (plain and streaming), and errors in the OpenAI shape', async () => {
    const models = await openai.models.list()
    assert.ok(models.data.some((m) => m.id === MODEL))
    const direct = await directGeneration(server.inference, { ...chatReq(16), prompt: { kind: 'chat', messages: [{ role: 'system', content: 'Tell a story.' }, { role: 'user', content: PROMPT }] } })
    const resp = await openai.responses.create({ model: MODEL, instructions: 'Tell a story.', input: PROMPT, max_output_tokens: 16, temperature: 0 })
    assert.equal(resp.output_text, direct.text)
    assert.equal(resp.usage?.output_tokens, direct.completionTokens)
    assert.equal(resp.status, direct.finishReason === 'length' ? 'incomplete' : 'completed')
    const events: string[] = []
    let streamed = ''
    const rs = await openai.responses.create({ model: MODEL, instructions: 'Tell a story.', input: [{ role: 'user', content: PROMPT }], max_output_tokens: 16, temperature: 0, stream: true })
    for await (const ev of rs) { events.push(ev.type); if (ev.type === 'response.output_text.delta') streamed += ev.delta }
    assert.equal(streamed, direct.text)
    assert.equal(events[0], 'response.created')
    assert.ok(['response.completed', 'response.incomplete'].includes(events[events.length - 1]!))
    await assert.rejects(openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), (err: unknown) => {
      assert.ok(err instanceof OpenAI.NotFoundError)
      assert.match(err.message, /stories260k-f32/)
      return true
    })
    await assert.rejects(openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], n: 2 }), OpenAI.BadRequestError)
  })
})

/** @anthropic-ai/sdk 1.12 no longer types `temperature`; the Messages API still takes it (greedy here). */
const greedy = <T extends object>(params: T): T => ({ ...params, temperature: 0 })

describe('Anthropic client', () => {
  it('messages: non-streaming and streaming agree with the engine; usage; count_tokens', async () => {
    const direct = await directGeneration(server.inference, chatReq(20))
    const m = await anthropic.messages.create(greedy({ model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: PROMPT }] }))
    assert.deepEqual(m.content, [{ type: 'text', text: direct.text }])
    assert.equal(m.stop_reason, direct.finishReason === 'length' ? 'max_tokens' : 'end_turn')
    assert.deepEqual(m.usage.input_tokens, direct.promptTokens)
    assert.deepEqual(m.usage.output_tokens, direct.completionTokens)
    const count = await anthropic.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: PROMPT }] })
    assert.equal(count.input_tokens, direct.promptTokens)
    const types: string[] = []
    let text = ''
    const stream = await anthropic.messages.create(greedy({ model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: PROMPT }], stream: true as const }))
    for await (const ev of stream) {
      types.push(ev.type)
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text
    }
    assert.equal(text, direct.text)
    assert.equal(types[0], 'message_start')
    assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop'])
    const final = await anthropic.messages.stream(greedy({ model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: PROMPT }] })).finalMessage()
    assert.deepEqual(final.content.map((b) => b.type === 'text' ? b.text : ''), [direct.text])
    assert.equal(final.usage.output_tokens, direct.completionTokens)
    await assert.rejects(anthropic.messages.create({ model: 'nope', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }), Anthropic.NotFoundError)
  })
})

describe('Ollama client', () => {
  it('generate and chat, streaming and not; tags, show, ps, version', async () => {
    const direct = await directGeneration(server.inference, textReq(30))
    const g = await ollama.generate({ model: MODEL, prompt: PROMPT, stream: false, options: { temperature: 0, num_predict: 30 } })
    assert.equal(g.response, REFERENCE_30)
    assert.equal(g.done_reason, 'length')
    assert.equal(g.eval_count, 30)
    assert.equal(g.prompt_eval_count, direct.promptTokens)
    let streamed = ''
    let last: { done: boolean, eval_count: number } | undefined
    for await (const part of await ollama.generate({ model: `${MODEL}:latest`, prompt: PROMPT, stream: true, options: { temperature: 0, num_predict: 30 } })) { streamed += part.response; last = part }
    assert.equal(streamed, REFERENCE_30)
    assert.equal(last?.done, true)
    const chatDirect = await directGeneration(server.inference, chatReq(20))
    const c = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: false, options: { temperature: 0, num_predict: 20 } })
    assert.equal(c.message.content, chatDirect.text)
    let chatStreamed = ''
    for await (const part of await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], stream: true, options: { temperature: 0, num_predict: 20 } })) chatStreamed += part.message.content
    assert.equal(chatStreamed, chatDirect.text)
    const tags = await ollama.list()
    assert.ok(tags.models.some((m) => m.name === `${MODEL}:latest`))
    const show = await ollama.show({ model: MODEL })
    assert.equal(show.details.family, 'llama')
    assert.ok((await ollama.ps()).models.length >= 1)
    assert.equal((await ollama.version()).version, (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version)
    await assert.rejects(ollama.generate({ model: 'nope', prompt: 'x', stream: false }), (err: unknown) => (err as { status_code?: number }).status_code === 404)
  })
})
