import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as openai from '../../../src/api/dialects/openai.js'
import * as completions from '../../../src/api/dialects/openai-completions.js'
import * as responses from '../../../src/api/dialects/openai-responses.js'
import { InvalidRequestError } from '../../../src/shared/errors/api-errors.js'
import type { GenerationEvent } from '../../../src/shared/inference.js'
import type { StreamSink } from '../../../src/api/sse.js'

async function * events (texts: string[], done: Partial<Extract<GenerationEvent, { type: 'done' }>> = {}): AsyncIterable<GenerationEvent> {
  for (const [i, text] of texts.entries()) yield { type: 'token', text, tokenId: i }
  yield { type: 'done', finishReason: 'stop', usage: { promptTokens: 7, completionTokens: texts.length }, ...done }
}

function recordingSink (): StreamSink & { frames: Array<{ data: unknown, event?: string }>, raw: string[] } {
  const frames: Array<{ data: unknown, event?: string }> = []
  const raw: string[] = []
  return { frames, raw, send: async (data, event) => { frames.push({ data, ...(event !== undefined ? { event } : {}) }) }, sendRaw: async (t) => { raw.push(t) }, end: () => {} }
}

describe('openai chat converter', () => {
  it('maps messages, sampling, stop, max tokens and stream options', () => {
    const call = openai.toInferenceRequest({
      model: 'm', messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'text', text: '!' }] }],
      max_tokens: 9, max_completion_tokens: 5, temperature: 0, top_p: 0.5, seed: 42, stop: 'END', presence_penalty: 1, frequency_penalty: -1,
      stream: true, stream_options: { include_usage: true }
    }, 'chatcmpl-x')
    assert.equal(call.request.id, 'chatcmpl-x')
    assert.deepEqual(call.request.prompt, { kind: 'chat', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi!' }] })
    assert.equal(call.request.maxTokens, 5, 'max_completion_tokens wins over max_tokens')
    assert.deepEqual(call.request.sampling, { temperature: 0, topP: 0.5, seed: 42, presencePenalty: 1, frequencyPenalty: -1 })
    assert.deepEqual(call.request.stop, ['END'])
    assert.equal(call.stream, true)
    assert.equal(call.includeUsage, true)
    assert.equal(call.request.grammar, undefined)
  })

  it('turns response_format and tools into grammars', () => {
    const base = { model: 'm', messages: [{ role: 'user', content: 'x' }] }
    assert.deepEqual(openai.toInferenceRequest({ ...base, response_format: { type: 'json_object' } }).request.grammar, { kind: 'json' })
    const schema = { type: 'object', properties: { a: { type: 'integer' } } }
    assert.deepEqual(openai.toInferenceRequest({ ...base, response_format: { type: 'json_schema', json_schema: { name: 's', schema } } }).request.grammar, { kind: 'json_schema', schema })
    const tools = [{ type: 'function', function: { name: 'f', parameters: schema } }, { type: 'function', function: { name: 'g' } }]
    const auto = openai.toInferenceRequest({ ...base, tools }).request.grammar
    assert.equal(auto?.kind, 'tool_call')
    assert.equal(auto?.kind === 'tool_call' && auto.required, false)
    const named = openai.toInferenceRequest({ ...base, tools, tool_choice: { type: 'function', function: { name: 'g' } } }).request.grammar
    assert.deepEqual(named, { kind: 'tool_call', required: true, tools: [{ name: 'g', parameters: {} }] })
    assert.equal(openai.toInferenceRequest({ ...base, tools, tool_choice: 'none' }).request.grammar, undefined)
    assert.throws(() => openai.toInferenceRequest({ ...base, tools, tool_choice: { type: 'function', function: { name: 'zz' } } }), InvalidRequestError)
  })

  it('maps assistant tool calls and tool results', () => {
    const call = openai.toInferenceRequest({
      model: 'm',
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{"city":"Oslo"}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'rain' }
      ]
    })
    assert.equal(call.request.prompt.kind, 'chat')
    const msgs = call.request.prompt.kind === 'chat' ? call.request.prompt.messages : []
    assert.deepEqual(msgs[1], { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'w', arguments: '{"city":"Oslo"}' }] })
    assert.deepEqual(msgs[2], { role: 'tool', content: 'rain', toolCallId: 'c1' })
  })

  const bad: Array<[string, unknown, string | undefined]> = [
    ['missing messages', { model: 'm' }, 'messages'],
    ['empty messages', { model: 'm', messages: [] }, 'messages'],
    ['unknown role', { model: 'm', messages: [{ role: 'wizard', content: 'x' }] }, 'messages.0.role'],
    ['n=2', { model: 'm', messages: [{ role: 'user', content: 'x' }], n: 2 }, 'n'],
    ['negative max_tokens', { model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: -1 }, 'max_tokens'],
    ['temperature as string', { model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }, 'temperature'],
    ['image part', { model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, undefined],
    ['array body', [], undefined],
    ['duplicate tools', { model: 'm', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'a' } }, { type: 'function', function: { name: 'a' } }] }, 'tools']
  ]
  for (const [name, body, param] of bad) {
    it(`rejects ${name} with InvalidRequestError`, () => {
      assert.throws(() => openai.toInferenceRequest(body), (err: unknown) => {
        assert.ok(err instanceof InvalidRequestError)
        if (param !== undefined) assert.ok(err.param?.startsWith(param), `param ${err.param} should start with ${param}`)
        return true
      })
    })
  }
})

describe('openai chat responders', () => {
  it('collects text, usage and finish reason', async () => {
    const call = openai.toInferenceRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }] }, 'chatcmpl-1')
    const body = await openai.collectResponse(events(['Hel', 'lo'], { finishReason: 'length' }), call) as any
    assert.equal(body.object, 'chat.completion')
    assert.equal(body.choices[0].message.content, 'Hello')
    assert.equal(body.choices[0].finish_reason, 'length')
    assert.deepEqual(body.usage, { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 })
  })

  it('streams role, deltas, finish, usage and [DONE]', async () => {
    const call = openai.toInferenceRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } })
    const sink = recordingSink()
    await openai.streamResponse(events(['a', 'b']), sink, call)
    const chunks = sink.frames.map((f) => f.data as any)
    assert.equal(chunks[0].choices[0].delta.role, 'assistant')
    assert.deepEqual(chunks.slice(1, 3).map((c) => c.choices[0].delta.content), ['a', 'b'])
    assert.equal(chunks[3].choices[0].finish_reason, 'stop')
    assert.deepEqual(chunks[4].choices, [])
    assert.equal(chunks[4].usage.total_tokens, 9)
    assert.deepEqual(sink.raw, ['[DONE]'])
  })

  it('reports tool calls with finish_reason tool_calls', async () => {
    const call = openai.toInferenceRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }] })
    const body = await openai.collectResponse(events([], { finishReason: 'tool_calls', toolCalls: [{ id: 'call_1', name: 'f', arguments: '{}' }] }), call) as any
    assert.equal(body.choices[0].message.content, null)
    assert.deepEqual(body.choices[0].message.tool_calls, [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }])
    assert.equal(body.choices[0].finish_reason, 'tool_calls')
  })
})

describe('openai completions and responses converters', () => {
  it('completions: text prompt, default 16 tokens, echo', async () => {
    const call = completions.toInferenceRequest({ model: 'm', prompt: 'Once', echo: true })
    assert.deepEqual(call.request.prompt, { kind: 'text', text: 'Once' })
    assert.equal(call.request.maxTokens, 16)
    const body = await completions.collectResponse(events([' upon']), call) as any
    assert.equal(body.choices[0].text, 'Once upon')
    assert.throws(() => completions.toInferenceRequest({ model: 'm', prompt: 'x', n: 3 }), InvalidRequestError)
    assert.throws(() => completions.toInferenceRequest({ model: 'm', prompt: 5 }), InvalidRequestError)
  })

  it('responses: instructions + items, text.format, function calls', async () => {
    const call = responses.toInferenceRequest({
      model: 'm', instructions: 'sys',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }, { type: 'function_call', call_id: 'c', name: 'f', arguments: '{}' }, { type: 'function_call_output', call_id: 'c', output: '42' }],
      text: { format: { type: 'json_schema', name: 'x', schema: { type: 'object' } } }, max_output_tokens: 3
    })
    assert.deepEqual(call.request.prompt, {
      kind: 'chat',
      messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: '', toolCalls: [{ id: 'c', name: 'f', arguments: '{}' }] }, { role: 'tool', content: '42', toolCallId: 'c' }]
    })
    assert.deepEqual(call.request.grammar, { kind: 'json_schema', schema: { type: 'object' } })
    assert.equal(call.request.maxTokens, 3)
    const body = await responses.collectResponse(events(['ok'], { finishReason: 'length' }), call) as any
    assert.equal(body.status, 'incomplete')
    assert.equal(body.output[0].content[0].text, 'ok')
    assert.equal(body.usage.output_tokens, 1)
    const sink = recordingSink()
    await responses.streamResponse(events(['a', 'b']), sink, { ...call, stream: true })
    const types = sink.frames.map((f) => f.event)
    assert.deepEqual(types, ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
      'response.output_text.delta', 'response.output_text.delta', 'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete'].map((t) => t === 'response.incomplete' ? 'response.completed' : t))
    assert.deepEqual(sink.frames.map((f) => (f.data as any).sequence_number), types.map((_t, i) => i))
  })
})
