import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'
import { Ollama } from 'ollama'
import { startApiNode } from './helpers/api-node.js'
import type { ApiNode } from './helpers/api-node.js'

/**
 * Structured output and tool calls through the HTTP API on the tiny story model, which never writes
 * JSON by itself: the grammar constraint (src/engine/grammar) masking real logits is what makes every
 * answer parse and validate. Runs against a real `exo-p2p start` process.
 */
const MODEL = 'stories260k-f32'
const PERSON = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer' }, happy: { type: 'boolean' }, mood: { enum: ['calm', 'sad', 'glad'] } },
  required: ['name', 'age', 'happy', 'mood'],
  additionalProperties: false
}
const WEATHER_TOOL = { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, days: { type: 'integer' } }, required: ['city', 'days'] } }

function assertPerson (text: string): void {
  const v = JSON.parse(text) as Record<string, unknown>
  assert.deepEqual(Object.keys(v).sort(), ['age', 'happy', 'mood', 'name'])
  assert.equal(typeof v.name, 'string')
  assert.ok([...(v.name as string)].length <= 12)
  assert.ok(Number.isInteger(v.age))
  assert.equal(typeof v.happy, 'boolean')
  assert.ok(['calm', 'sad', 'glad'].includes(v.mood as string))
}
function assertWeatherArgs (args: unknown): void {
  const a = (typeof args === 'string' ? JSON.parse(args) : args) as Record<string, unknown>
  assert.equal(typeof a.city, 'string')
  assert.ok(Number.isInteger(a.days))
}

let server: ApiNode
let openai: OpenAI
before(async () => {
  server = await startApiNode()
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 })
})
after(async () => { await server.close() })

describe('structured output', () => {
  it('OpenAI json_schema and json_object; Ollama format schema; Responses text.format', async () => {
    const r = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Lily was' }], max_tokens: 150, temperature: 0, response_format: { type: 'json_schema', json_schema: { name: 'person', schema: PERSON } } })
    assert.equal(r.choices[0]?.finish_reason, 'stop')
    assertPerson(r.choices[0]?.message.content ?? '')
    const obj = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Tom' }], max_tokens: 150, temperature: 0, response_format: { type: 'json_object' } })
    const text = obj.choices[0]?.message.content ?? ''
    if (obj.choices[0]?.finish_reason === 'stop') assert.equal(typeof JSON.parse(text), 'object')
    else assert.ok(text.startsWith('{'), 'cut by max_tokens, but still a JSON object prefix')
    const o = await new Ollama({ host: server.url }).chat({ model: MODEL, messages: [{ role: 'user', content: 'Ben' }], format: PERSON, stream: false, options: { temperature: 0, num_predict: 150 } })
    assertPerson(o.message.content)
    const resp = await openai.responses.create({ model: MODEL, input: 'Sue', max_output_tokens: 150, temperature: 0, text: { format: { type: 'json_schema', name: 'person', schema: PERSON } } })
    assertPerson(resp.output_text)
  })

  it('OpenAI tools (required and named, streaming too) → tool_calls', async () => {
    const tools = [{ type: 'function' as const, function: WEATHER_TOOL }]
    const r = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Weather in Paris?' }], max_tokens: 120, temperature: 0, tools, tool_choice: 'required' })
    assert.equal(r.choices[0]?.finish_reason, 'tool_calls')
    const call = r.choices[0]?.message.tool_calls?.[0]
    assert.ok(call !== undefined && call.type === 'function')
    assert.equal(call.function.name, 'get_weather')
    assert.match(call.id, /^call_/)
    assertWeatherArgs(call.function.arguments)
    const stream = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Weather in Paris?' }], max_tokens: 120, temperature: 0, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, stream: true })
    let args = ''
    let name = ''
    let finish: string | null = null
    for await (const c of stream) {
      for (const tc of c.choices[0]?.delta.tool_calls ?? []) { name += tc.function?.name ?? ''; args += tc.function?.arguments ?? '' }
      finish = c.choices[0]?.finish_reason ?? finish
    }
    assert.equal(name, 'get_weather')
    assert.equal(args, call.function.arguments, 'greedy: same call streamed and not')
    assert.equal(finish, 'tool_calls')
    const resp = await openai.responses.create({ model: MODEL, input: 'Weather?', max_output_tokens: 120, temperature: 0, tools: [{ type: 'function', name: WEATHER_TOOL.name, parameters: WEATHER_TOOL.parameters, strict: false }], tool_choice: 'required' })
    const fc = resp.output.find((o) => o.type === 'function_call')
    assert.ok(fc !== undefined && fc.type === 'function_call')
    assertWeatherArgs(fc.arguments)
  })

  it('Anthropic tools → tool_use blocks (plain and streamed); Ollama tools → tool_calls', async () => {
    const anthropic = new Anthropic({ baseURL: server.url, apiKey: 'unused', maxRetries: 0 })
    const params = { model: MODEL, max_tokens: 120, temperature: 0, messages: [{ role: 'user' as const, content: 'Weather in Oslo?' }], tools: [{ name: WEATHER_TOOL.name, description: WEATHER_TOOL.description, input_schema: WEATHER_TOOL.parameters as Anthropic.Tool.InputSchema }], tool_choice: { type: 'any' as const } }
    const m = await anthropic.messages.create(params)
    assert.equal(m.stop_reason, 'tool_use')
    const block = m.content.find((b) => b.type === 'tool_use')
    assert.ok(block !== undefined && block.type === 'tool_use')
    assert.equal(block.name, 'get_weather')
    assert.match(block.id, /^toolu_/)
    assertWeatherArgs(block.input)
    const final = await anthropic.messages.stream(params).finalMessage()
    const streamed = final.content.find((b) => b.type === 'tool_use')
    assert.ok(streamed !== undefined && streamed.type === 'tool_use')
    assert.deepEqual(streamed.input, block.input)
    assert.equal(final.stop_reason, 'tool_use')
    const o = await new Ollama({ host: server.url }).chat({ model: MODEL, messages: [{ role: 'user', content: 'Weather?' }], tools: [{ type: 'function', function: WEATHER_TOOL }], stream: false, options: { temperature: 0, num_predict: 120 } })
    // tools with Ollama are "auto": the grammar allows a call or text that does not start like JSON
    if (o.message.tool_calls !== undefined && o.message.tool_calls.length > 0) {
      assert.equal(o.message.tool_calls[0]?.function.name, 'get_weather')
      assertWeatherArgs(o.message.tool_calls[0]?.function.arguments)
    } else {
      assert.doesNotMatch(o.message.content.trimStart(), /^[{[]/)
    }
  })

  it('a schema the grammar cannot express is a 400, not a crash', async () => {
    await assert.rejects(openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { $ref: 'http://evil/x' } } } } } }), OpenAI.BadRequestError)
  })
})
