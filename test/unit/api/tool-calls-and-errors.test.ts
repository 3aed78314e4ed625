import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseToolCallText, toolCallJsonSchema } from '../../../src/shared/tool-call-format.js'
import { withToolCalls } from '../../../src/api/tool-call-events.js'
import { errorPayload } from '../../../src/api/http-errors.js'
import { InvalidRequestError } from '../../../src/shared/errors/api-errors.js'
import { UnknownModelError } from '../../../src/shared/errors/model-errors.js'
import { ExoError } from '../../../src/shared/errors/exo-error.js'
import { asModelId, asRequestId } from '../../../src/shared/ids.js'
import type { GenerationEvent, InferenceRequest } from '../../../src/shared/inference.js'

const tools = [{ name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }]
let n = 0
const ids = (): string => `id${n++}`

describe('tool call text format', () => {
  it('parses a call object or array, rejects anything else', () => {
    assert.deepEqual(parseToolCallText(' {"name":"get_weather","arguments":{"city":"Oslo"}} ', tools, () => 'c'), [{ id: 'c', name: 'get_weather', arguments: '{"city":"Oslo"}' }])
    assert.equal(parseToolCallText('[{"name":"get_weather","arguments":{}}]', tools, ids)?.length, 1)
    for (const bad of ['hello', '{"name":"nope","arguments":{}}', '{"name":"get_weather","arguments":[1]}', '{"name":', '[]', '{"arguments":{}}', 'null']) {
      assert.equal(parseToolCallText(bad, tools, ids), undefined, bad)
    }
  })

  it('schema: one object per tool with const name; oneOf for several', () => {
    const one = toolCallJsonSchema(tools)
    assert.deepEqual((one.properties as any).name, { const: 'get_weather' })
    const two = toolCallJsonSchema([...tools, { name: 'noop', parameters: {} }])
    assert.equal((two.oneOf as unknown[]).length, 2)
  })
})

describe('withToolCalls', () => {
  const request: InferenceRequest = { id: asRequestId('r'), model: asModelId('m'), prompt: { kind: 'text', text: '' }, maxTokens: 9, sampling: {}, stop: [], grammar: { kind: 'tool_call', tools, required: false } }
  async function * gen (texts: string[]): AsyncIterable<GenerationEvent> {
    for (const t of texts) yield { type: 'token', text: t, tokenId: 1 }
    yield { type: 'done', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: texts.length } }
  }
  async function all (it: AsyncIterable<GenerationEvent>): Promise<GenerationEvent[]> { const out = []; for await (const e of it) out.push(e); return out }

  it('holds JSON text back and emits a tool call', async () => {
    const out = await all(withToolCalls(gen([' {"name":"get_', 'weather","arguments":{"city":"X"}}']), request))
    assert.equal(out.length, 1)
    const done = out[0]
    assert.ok(done?.type === 'done')
    assert.equal(done.finishReason, 'tool_calls')
    assert.equal(done.toolCalls?.[0]?.name, 'get_weather')
  })

  it('passes plain text through and releases unparsable JSON as text', async () => {
    const plain = await all(withToolCalls(gen(['Hi', ' there']), request))
    assert.deepEqual(plain.filter((e) => e.type === 'token').map((e) => e.type === 'token' ? e.text : ''), ['Hi', ' there'])
    const broken = await all(withToolCalls(gen(['{"name"', ':']), request))
    assert.deepEqual(broken.map((e) => e.type), ['token', 'done'])
    assert.equal(broken[1]?.type === 'done' && broken[1].finishReason, 'stop')
  })
})

describe('http errors', () => {
  class NoReadyPlan extends ExoError { readonly code = 'NO_READY_PLAN' }
  class ContextTooLong extends ExoError { readonly code = 'CONTEXT_TOO_LONG' }
  it('maps errors to status and each dialect shape', () => {
    const unknown = new UnknownModelError('x', ['a', 'b'])
    assert.deepEqual(errorPayload('openai', unknown), { status: 404, body: { error: { message: unknown.message, type: 'not_found_error', param: null, code: 'UNKNOWN_MODEL' } } })
    assert.match(unknown.message, /a, b/)
    assert.deepEqual(errorPayload('anthropic', new InvalidRequestError('bad', 'x')), { status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'bad' } } })
    assert.deepEqual(errorPayload('ollama', new NoReadyPlan('no plan: 1 of 2 layers covered')), { status: 503, body: { error: 'no plan: 1 of 2 layers covered' } })
    assert.equal(errorPayload('openai', new ContextTooLong('too long')).status, 400)
    class NoEngine extends ExoError { readonly code = 'NO_ENGINE' }
    class Untokenizable extends ExoError { readonly code = 'UNTOKENIZABLE_TEXT' }
    assert.equal(errorPayload('openai', new NoEngine('none')).status, 503)
    assert.equal(errorPayload('anthropic', new Untokenizable('no')).status, 400)
    assert.equal(errorPayload('openai', Object.assign(new SyntaxError('Unexpected token'), { status: 400, type: 'entity.parse.failed' })).status, 400)
    assert.equal(errorPayload('anthropic', Object.assign(new Error('too large'), { status: 413, type: 'entity.too.large', limit: 4 })).status, 413)
    const internal = errorPayload('openai', new Error('secret detail'))
    assert.equal(internal.status, 500)
    assert.doesNotMatch(JSON.stringify(internal.body), /secret/)
  })
})
