// Property tests of the HTTP dialect schemas (OpenAI chat / completions / responses, Anthropic, Ollama) and
// of the JSON-schema → grammar subset: any JSON body is a typed 400 or an internal request that the
// inference protocol carries unchanged (a body the API accepts never fails later on the mesh's wire).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import * as openai from '../../../src/api/dialects/openai.js'
import * as completions from '../../../src/api/dialects/openai-completions.js'
import * as responses from '../../../src/api/dialects/openai-responses.js'
import * as anthropic from '../../../src/api/dialects/anthropic.js'
import * as ollama from '../../../src/api/dialects/ollama.js'
import { errorPayload, statusForError } from '../../../src/api/http-errors.js'
import { decodeRequestFrame, encodeRequestFrame } from '../../../src/protocols/inference/codec.js'
import { MAX_REQUEST_BYTES } from '../../../src/protocols/inference/constants.js'
import { FrameDecoder } from '../../../src/protocols/framing.js'
import { toSubsetSchema } from '../../../src/engine/grammar/json-schema-subset.js'
import { InvalidGrammarError } from '../../../src/shared/errors/grammar-errors.js'
import type { InferenceRequest } from '../../../src/shared/inference.js'
import { FUZZ, typedOrValid } from './typed-or-valid.js'

/** An Ollama call without messages / prompt only loads the model: it never reaches the inference protocol. */
const loadOnly = (c: ollama.OllamaCall): InferenceRequest | Pick<InferenceRequest, 'model' | 'prompt'> =>
  c.loadOnly ? { model: c.request.model, prompt: c.request.prompt } : c.request

const parsers: Array<[string, (body: unknown) => InferenceRequest | Pick<InferenceRequest, 'model' | 'prompt'>, Record<string, unknown>]> = [
  ['openai chat', (b) => openai.toInferenceRequest(b, 'chatcmpl-1').request, {
    model: 'm', messages: [{ role: 'system', content: 's' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }], max_tokens: 5, temperature: 0.5, stop: ['x'],
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } } } } }], tool_choice: 'auto',
    response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object' } } }
  }],
  ['openai completions', (b) => completions.toInferenceRequest(b, 'cmpl-1').request, { model: 'm', prompt: 'Once', max_tokens: 5, stop: '\n', seed: 3 }],
  ['openai responses', (b) => responses.toInferenceRequest(b, 'resp_1').request, { model: 'm', input: [{ role: 'user', content: 'hi' }], instructions: 'be brief', max_output_tokens: 8 }],
  ['anthropic messages', (b) => anthropic.toInferenceRequest(b, 'msg_1').request, {
    model: 'm', max_tokens: 16, system: 'sys', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], stop_sequences: ['END'],
    tools: [{ name: 't', input_schema: { type: 'object' } }], tool_choice: { type: 'auto' }
  }],
  ['anthropic count_tokens', (b) => anthropic.toCountTokensRequest(b), { model: 'm', messages: [{ role: 'user', content: 'hi' }] }],
  ['ollama chat', (b) => loadOnly(ollama.toChatRequest(b, 'chat-1')), { model: 'm', messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 4, temperature: 0, stop: ['a'] }, format: 'json' }],
  ['ollama generate', (b) => loadOnly(ollama.toGenerateRequest(b, true, 'gen-1')), { model: 'm', prompt: 'hi', system: 's', options: { num_predict: 4, top_k: 5 }, raw: false }]
]

/** Hostile JSON values: huge and negative numbers, wrong types, deep nesting, prototype keys. */
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom(null, true, 0, -1, 1e308, -1e308, 2 ** 53 + 2, 0.5, '', 'x'.repeat(5000), [], {}, JSON.parse('{"__proto__":{"a":1}}'), { constructor: 1 }, [[[[[[[]]]]]]]),
  fc.string({ maxLength: 40 }),
  fc.integer()
)

/** A valid body with fields replaced, removed or added. */
function mutatedBody (base: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = [...Object.keys(base), 'messages', 'content', 'role', 'stream', 'n', 'logprobs', '__proto__', 'constructor']
  const edit = fc.oneof(
    fc.record({ op: fc.constant('set' as const), key: fc.constantFrom(...keys), value: hostile }),
    fc.record({ op: fc.constant('del' as const), key: fc.constantFrom(...keys) }),
    fc.record({ op: fc.constant('deep' as const), path: fc.array(fc.oneof(fc.constantFrom(...keys), fc.nat(3).map(String), fc.constantFrom('type', 'text', 'role', 'content', 'function', 'name', 'parameters', 'schema', 'json_schema', 'options')), { minLength: 1, maxLength: 4 }), value: hostile })
  )
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    // own properties only (defineProperty): a key `__proto__` must be data, as JSON.parse makes it, and the
    // test must never write through to Object.prototype
    const put = (o: object, k: string, v: unknown): void => { Object.defineProperty(o, k, { value: structuredClone(v), enumerable: true, writable: true, configurable: true }) }
    const body = structuredClone(base) as Record<string, unknown>
    for (const e of edits) {
      if (e.op === 'set') put(body, e.key, e.value)
      else if (e.op === 'del') Reflect.deleteProperty(body, e.key)
      else {
        let node: unknown = body
        for (const k of e.path.slice(0, -1)) node = typeof node === 'object' && node !== null && Object.hasOwn(node, k) ? (node as Record<string, unknown>)[k] : undefined
        if (typeof node === 'object' && node !== null) put(node, e.path.at(-1)!, e.value)
      }
    }
    return body
  })
}

function checkAccepted (name: string, r: InferenceRequest | Pick<InferenceRequest, 'model' | 'prompt'>): void {
  if (!('maxTokens' in r)) return
  const frame = new FrameDecoder(MAX_REQUEST_BYTES).push(encodeRequestFrame(r))[0]!
  assert.deepEqual(decodeRequestFrame(frame), JSON.parse(JSON.stringify(r)), `${name}: an accepted request crosses the inference protocol unchanged`)
}

function checkRejected (err: unknown): void {
  const status = statusForError(err)
  assert.ok(status >= 400 && status < 500, `a rejected body is a 4xx, got ${status}`)
  for (const d of ['openai', 'anthropic', 'ollama'] as const) JSON.stringify(errorPayload(d, err).body)
}

for (const [name, parse, base] of parsers) {
  test(`${name}: the valid base body is accepted and survives the wire`, () => { checkAccepted(name, parse(structuredClone(base))) })

  test(`${name}: any JSON body → typed 4xx or a request the inference protocol carries`, () => {
    fc.assert(fc.property(fc.oneof({ weight: 1, arbitrary: hostile }, { weight: 3, arbitrary: mutatedBody(base) }), (body) => {
      const r = typedOrValid(() => parse(body))
      if (r !== undefined) checkAccepted(name, r)
      else try { parse(body) } catch (err) { checkRejected(err) }
    }), { ...FUZZ, numRuns: Math.ceil(FUZZ.numRuns / 2) })
  })
}

test('JSON schema → grammar subset: any schema is converted or refused with InvalidGrammarError', () => {
  const schema: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' },
      hostile,
      fc.record({
        type: fc.oneof(fc.constantFrom('string', 'number', 'integer', 'boolean', 'null', 'object', 'array', 'nope'), fc.array(fc.constantFrom('string', 'null', 'object'), { maxLength: 3 })),
        properties: fc.dictionary(fc.string({ maxLength: 6 }), tie('node'), { maxKeys: 3 }),
        items: tie('node'),
        oneOf: fc.array(tie('node'), { maxLength: 3 }),
        anyOf: fc.array(tie('node'), { maxLength: 2 }),
        enum: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
        required: fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }),
        $ref: fc.constantFrom('#/$defs/a', '#/definitions/b', '#/$defs/missing', 'http://x', '#'),
        $defs: fc.dictionary(fc.constantFrom('a', 'b'), tie('node'), { maxKeys: 2 }),
        minItems: fc.oneof(fc.integer({ min: -3, max: 5 }), fc.constant(1e9)),
        maxLength: fc.oneof(fc.integer({ min: -3, max: 5 }), fc.constant(2 ** 53))
      }, { requiredKeys: [] })
    )
  })).node
  fc.assert(fc.property(schema, (s) => { typedOrValid(() => toSubsetSchema(s), [InvalidGrammarError]) }), FUZZ)
})
