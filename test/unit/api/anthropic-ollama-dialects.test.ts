import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as anthropic from '../../../src/api/dialects/anthropic.js'
import * as ollama from '../../../src/api/dialects/ollama.js'
import { InvalidRequestError } from '../../../src/shared/errors/api-errors.js'
import type { GenerationEvent } from '../../../src/shared/inference.js'
import type { StreamSink } from '../../../src/api/sse.js'

async function * events (texts: string[], done: Partial<Extract<GenerationEvent, { type: 'done' }>> = {}): AsyncIterable<GenerationEvent> {
  for (const [i, text] of texts.entries()) yield { type: 'token', text, tokenId: i }
  yield { type: 'done', finishReason: 'stop', usage: { promptTokens: 4, completionTokens: texts.length }, ...done }
}
function recordingSink (): StreamSink & { frames: Array<{ data: any, event?: string }> } {
  const frames: Array<{ data: any, event?: string }> = []
  return { frames, send: async (data, event) => { frames.push({ data, ...(event !== undefined ? { event } : {}) }) }, sendRaw: async () => {}, end: () => {} }
}

describe('anthropic converter and responders', () => {
  it('maps system, blocks, tool_use and tool_result', () => {
    const call = anthropic.toInferenceRequest({
      model: 'm', max_tokens: 10, system: [{ type: 'text', text: 'S' }], stop_sequences: ['\n\n'], temperature: 0.5, top_k: 3,
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: [{ type: 'text', text: 'let me check' }, { type: 'tool_use', id: 'toolu_1', name: 'w', input: { city: 'Oslo' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'rain' }] }
      ],
      tools: [{ name: 'w', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
      tool_choice: { type: 'any' }
    })
    const r = call.request
    assert.deepEqual(r.sampling, { temperature: 0.5, topK: 3 })
    assert.deepEqual(r.stop, ['\n\n'])
    assert.equal(r.prompt.kind, 'chat')
    assert.deepEqual(r.prompt.kind === 'chat' && r.prompt.messages, [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'q' },
      { role: 'assistant', content: 'let me check', toolCalls: [{ id: 'toolu_1', name: 'w', arguments: '{"city":"Oslo"}' }] },
      { role: 'tool', content: 'rain', toolCallId: 'toolu_1' }
    ])
    assert.equal(r.grammar?.kind === 'tool_call' && r.grammar.required, true)
  })

  it('requires max_tokens and rejects bad roles and temperatures > 1', () => {
    assert.throws(() => anthropic.toInferenceRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }] }), InvalidRequestError)
    assert.throws(() => anthropic.toInferenceRequest({ model: 'm', max_tokens: 5, messages: [{ role: 'system', content: 'x' }] }), InvalidRequestError)
    assert.throws(() => anthropic.toInferenceRequest({ model: 'm', max_tokens: 5, temperature: 1.5, messages: [{ role: 'user', content: 'x' }] }), InvalidRequestError)
  })

  it('collects stop_sequence and tool_use', async () => {
    const call = anthropic.toInferenceRequest({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })
    const a = await anthropic.collectResponse(events(['hi'], { stopSequence: '\n' }), call) as any
    assert.equal(a.stop_reason, 'stop_sequence')
    assert.equal(a.stop_sequence, '\n')
    assert.deepEqual(a.content, [{ type: 'text', text: 'hi' }])
    assert.deepEqual(a.usage, { input_tokens: 4, output_tokens: 1 })
    const b = await anthropic.collectResponse(events([], { finishReason: 'tool_calls', toolCalls: [{ id: 'x1', name: 'w', arguments: '{"a":1}' }] }), call) as any
    assert.equal(b.stop_reason, 'tool_use')
    assert.deepEqual(b.content, [{ type: 'tool_use', id: 'toolu_x1', name: 'w', input: { a: 1 } }])
  })

  it('streams the full event sequence', async () => {
    const call = anthropic.toInferenceRequest({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }], stream: true })
    const sink = recordingSink()
    await anthropic.streamResponse(events(['a', 'b'], { finishReason: 'length' }), sink, call, 4)
    assert.deepEqual(sink.frames.map((f) => f.event), ['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'])
    assert.ok(sink.frames.every((f) => f.data.type === f.event))
    assert.equal(sink.frames[0]?.data.message.usage.input_tokens, 4)
    assert.equal(sink.frames[6]?.data.delta.stop_reason, 'max_tokens')
    assert.equal(sink.frames[6]?.data.usage.output_tokens, 2)
  })
})

describe('ollama converters and responders', () => {
  it('chat: options, format, tools, :latest', () => {
    const call = ollama.toChatRequest({
      model: 'm:latest', messages: [{ role: 'user', content: 'x' }], format: 'json',
      options: { temperature: 0, num_predict: 7, stop: ['a'], seed: 1, top_k: 5, repeat_penalty: 1.1, mirostat: 0 }
    })
    assert.equal(call.request.model, 'm')
    assert.equal(call.stream, true, 'ollama streams by default')
    assert.equal(call.request.maxTokens, 7)
    assert.deepEqual(call.request.sampling, { temperature: 0, seed: 1, topK: 5, repeatPenalty: 1.1 })
    assert.deepEqual(call.request.grammar, { kind: 'json' })
    const schema = ollama.toChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], format: { type: 'object' }, stream: false })
    assert.deepEqual(schema.request.grammar, { kind: 'json_schema', schema: { type: 'object' } })
    assert.equal(schema.stream, false)
  })

  it('generate: text prompt without a chat template, chat prompt with one', () => {
    assert.deepEqual(ollama.toGenerateRequest({ model: 'm', prompt: 'Once' }, false).request.prompt, { kind: 'text', text: 'Once' })
    assert.deepEqual(ollama.toGenerateRequest({ model: 'm', prompt: 'Once', system: 'S' }, true).request.prompt,
      { kind: 'chat', messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'Once' }] })
    assert.deepEqual(ollama.toGenerateRequest({ model: 'm', prompt: 'Once', raw: true }, true).request.prompt, { kind: 'text', text: 'Once' })
    assert.equal(ollama.toGenerateRequest({ model: 'm' }, false).loadOnly, true)
    assert.throws(() => ollama.toGenerateRequest({ model: 'm', prompt: 'x', options: { num_predict: 'many' } }, false), InvalidRequestError)
    assert.throws(() => ollama.toChatRequest({ model: 'm', messages: [{ role: 'x', content: 'y' }] }), InvalidRequestError)
  })

  it('collects done fields and tool calls; streams NDJSON objects', async () => {
    const call = ollama.toChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: false })
    const body = await ollama.collectResponse(events(['a', 'b'], { finishReason: 'length' }), call) as any
    assert.equal(body.message.content, 'ab')
    assert.equal(body.done, true)
    assert.equal(body.done_reason, 'length')
    assert.equal(body.prompt_eval_count, 4)
    assert.equal(body.eval_count, 2)
    const tc = await ollama.collectResponse(events([], { toolCalls: [{ id: 'c', name: 'f', arguments: '{"x":1}' }] }), call) as any
    assert.deepEqual(tc.message.tool_calls, [{ function: { name: 'f', arguments: { x: 1 } } }])
    const sink = recordingSink()
    const gen = ollama.toGenerateRequest({ model: 'm', prompt: 'x' }, false)
    await ollama.streamResponse(events(['a']), sink, gen)
    assert.deepEqual(sink.frames.map((f) => [f.data.response, f.data.done]), [['a', false], ['', true]])
  })
})
