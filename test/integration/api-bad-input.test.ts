import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { startApiServer } from './helpers/api-server.js'
import type { ApiServer } from './helpers/api-server.js'

/**
 * ≥ 500 malformed or hostile requests across every POST route (broken JSON, non-object JSON, huge
 * bodies, bad charsets and encodings, wrong types, missing fields, negative / out-of-range / NaN-like
 * numbers, unknown roles, unknown models, wrong methods): each gets a 4xx in its route's dialect shape,
 * none a 5xx, and the server keeps serving real generations in between and afterwards.
 */
type Dialect = 'openai' | 'anthropic' | 'ollama'
interface Case { path: string, dialect: Dialect, method?: string, body: string | Uint8Array, headers?: Record<string, string>, label: string }

const MODEL = 'stories260k-f32'
const msgs = [{ role: 'user', content: 'Once' }]
const ROUTES: Array<{ path: string, dialect: Dialect, base: Record<string, unknown>, required: string[], invalid: Record<string, unknown[]> }> = [
  {
    path: '/v1/chat/completions', required: ['model', 'messages'], dialect: 'openai', base: { model: MODEL, messages: msgs, max_tokens: 2 },
    invalid: {
      messages: ['x', [], [{}], [{ role: 'wizard', content: 'x' }], [{ role: 'user' }], [{ role: 'user', content: 5 }], [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }], {}],
      max_tokens: [-1, 0, 1.5, 'ten', [], 1e12], temperature: [-0.1, 2.5, 'hot', {}], top_p: [-1, 1.5], n: [2, 0, -3], seed: [1.5, 'x'],
      stop: [5, [1], Array(40).fill('x')], presence_penalty: [-3, 9], frequency_penalty: ['x'], stream: ['yes', 1],
      response_format: [{ type: 'xml' }, 'json', { type: 'json_schema' }], tools: ['x', [{ type: 'function' }], [{ type: 'function', function: { name: 'bad name!' } }]],
      tool_choice: ['sometimes', { type: 'function', function: {} }]
    }
  },
  {
    path: '/v1/completions', required: ['model', 'prompt'], dialect: 'openai', base: { model: MODEL, prompt: 'Once', max_tokens: 2 },
    invalid: { prompt: [5, null, ['a', 'b'], {}], max_tokens: [-5, 'x', 0], temperature: [3], n: [4], echo: ['yes'], suffix: ['tail'], logprobs: [3], best_of: [3] }
  },
  {
    path: '/v1/responses', required: ['model', 'input'], dialect: 'openai', base: { model: MODEL, input: 'Once', max_output_tokens: 2 },
    invalid: {
      input: [5, [], [{ role: 'wizard', content: 'x' }], [{ type: 'function_call' }], [{ role: 'user', content: [{ type: 'input_image' }] }]],
      max_output_tokens: [-1, 'x'], instructions: [5], temperature: [-2], previous_response_id: ['resp_1'], text: [{ format: { type: 'yaml' } }], tools: [[{ type: 'web_search' }]]
    }
  },
  {
    path: '/v1/messages', required: ['model', 'messages', 'max_tokens'], dialect: 'anthropic', base: { model: MODEL, max_tokens: 2, messages: msgs },
    invalid: {
      max_tokens: [undefined, -1, 0, 'x', 2.5], messages: [[{ role: 'system', content: 'x' }], [{ role: 'user', content: [{ type: 'image' }] }], 'x', []],
      system: [5, [{ type: 'image' }]], temperature: [1.5, -1], stop_sequences: ['\n', [5]], top_k: [-1, 0.5], stream: ['no'],
      tools: [[{ name: 'x' }], [{ name: 'bad name', input_schema: {} }]], tool_choice: [{ type: 'sometimes' }, { type: 'tool' }]
    }
  },
  {
    path: '/v1/messages/count_tokens', required: ['model', 'messages'], dialect: 'anthropic', base: { model: MODEL, messages: msgs },
    invalid: { messages: [5, [{ role: 'tool', content: 'x' }]], system: [{}], tools: ['x'] }
  },
  {
    path: '/api/chat', required: ['model'], dialect: 'ollama', base: { model: MODEL, messages: msgs, stream: false, options: { num_predict: 2 } },
    invalid: {
      messages: ['x', [{ role: 'wizard', content: 'x' }], [{ role: 'user', content: 5 }], [{ role: 'user', content: 'x', images: ['aGk='] }]],
      options: ['fast', { temperature: -1 }, { num_predict: 0 }, { num_predict: -9 }, { top_p: 2 }, { seed: 'x' }, { stop: 5 }], format: [5, 'yaml'], stream: ['yes'], tools: [[{ type: 'x' }]]
    }
  },
  {
    path: '/api/generate', required: ['model'], dialect: 'ollama', base: { model: MODEL, prompt: 'Once', stream: false, options: { num_predict: 2 } },
    invalid: { prompt: [5, [], {}], options: [{ num_predict: 'many' }, { temperature: 'hot' }], suffix: ['x'], template: ['{{ .Prompt }}'], context: [[1, 2], 'x'], raw: ['yes'], images: [['aGk=']] }
  },
  { path: '/api/show', required: [], dialect: 'ollama', base: { model: MODEL }, invalid: { model: [5, '', []], verbose: ['x'] } }
]

const BROKEN_JSON = ['{', '{"model":', 'not json', '{"a":1,}', "{'model':'x'}", '[1,2', 'nul', '{"model": NaN}', '{"max_tokens": -Infinity}', '{"model":"x"}}', '\u0000', '{"model":"\\x"}']
const NON_OBJECT_JSON = ['[]', '1', '"x"', 'null', 'true', '[{"model":"x"}]']

function cases (): Case[] {
  const out: Case[] = []
  for (const r of ROUTES) {
    const add = (label: string, body: string | Uint8Array, headers?: Record<string, string>): void => { out.push({ path: r.path, dialect: r.dialect, body, label, ...(headers !== undefined ? { headers } : {}) }) }
    for (const b of BROKEN_JSON) add(`broken ${JSON.stringify(b)}`, b)
    for (const b of NON_OBJECT_JSON) add(`non-object ${b}`, b)
    const valid = JSON.stringify(r.base)
    for (let k = 1; k <= 10; k++) { const cut = Math.floor(valid.length * k / 11); add(`truncated at ${cut}`, valid.slice(0, cut)) }
    add('empty body', '')
    add('huge body', JSON.stringify({ ...r.base, pad: 'x'.repeat(5 * 1024 * 1024) }))
    add('bad charset', JSON.stringify(r.base), { 'content-type': 'application/json; charset=iso-8859-1' })
    add('gzip garbage', new Uint8Array(Buffer.from('definitely not gzip')), { 'content-encoding': 'gzip' })
    add('gzip bomb-ish', new Uint8Array(gzipSync(Buffer.alloc(6 * 1024 * 1024, 32))), { 'content-encoding': 'gzip' })
    add('deeply nested', `{"model":${'['.repeat(100_000)}${']'.repeat(100_000)}}`)
    add('unknown model', JSON.stringify({ ...r.base, model: 'no-such-model' }))
    add('model wrong type', JSON.stringify({ ...r.base, model: 42 }))
    for (const key of Object.keys(r.base)) {
      const { [key]: _dropped, ...rest } = r.base
      if (r.required.includes(key)) add(`missing ${key}`, JSON.stringify(rest))
    }
    for (const [field, values] of Object.entries(r.invalid)) {
      for (const v of values) add(`${field}=${JSON.stringify(v)?.slice(0, 40)}`, JSON.stringify({ ...r.base, [field]: v }))
      add(`${field}=1e999`, JSON.stringify({ ...r.base, [field]: 0 }).replace(`"${field}":0`, `"${field}":1e999`))
      if (!['text', 'options', 'format'].includes(field)) add(`${field} nested junk`, JSON.stringify({ ...r.base, [field]: { $ref: '#', __proto__: { polluted: true }, constructor: { prototype: 1 } } }))
    }
  }
  for (const path of ['/v1/chat/completions', '/v1/messages', '/v1/completions', '/v1/nope']) out.push({ path, dialect: path.startsWith('/v1/messages') ? 'anthropic' : 'openai', method: 'GET', body: '', label: 'wrong method' })
  for (const path of ['/api/chat', '/api/tags', '/api/version']) out.push({ path, dialect: 'ollama', method: path === '/api/chat' ? 'GET' : 'DELETE', body: '', label: 'wrong method' })
  return out
}

function assertDialectShape (dialect: Dialect, body: any, label: string): void {
  if (dialect === 'openai') {
    assert.equal(typeof body?.error?.message, 'string', label)
    assert.equal(typeof body?.error?.type, 'string', label)
    assert.ok('param' in body.error && 'code' in body.error, label)
  } else if (dialect === 'anthropic') {
    assert.equal(body?.type, 'error', label)
    assert.equal(typeof body?.error?.type, 'string', label)
    assert.equal(typeof body?.error?.message, 'string', label)
  } else {
    assert.equal(typeof body?.error, 'string', label)
  }
}

let server: ApiServer
before(async () => { server = await startApiServer() })
after(async () => { await server.close() })

async function send (c: Case): Promise<{ status: number, body: unknown }> {
  const res = await fetch(server.url + c.path, {
    method: c.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...c.headers },
    ...(c.method === undefined || c.method === 'POST' ? { body: c.body as string } : {})
  })
  const text = await res.text()
  let body: unknown
  try { body = JSON.parse(text) } catch { body = text }
  return { status: res.status, body }
}

async function stillServes (): Promise<void> {
  const res = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: 5, temperature: 0 }) })
  assert.equal(res.status, 200)
  const body = await res.json() as { choices: Array<{ text: string }> }
  assert.equal(body.choices[0]?.text, ', there was a little')
}

describe('hostile input', () => {
  it('every malformed request gets a 4xx in its dialect shape; the server keeps serving', async () => {
    const all = cases()
    assert.ok(all.length >= 500, `only ${all.length} cases`)
    const failures: string[] = []
    const started = Date.now()
    for (let i = 0; i < all.length; i += 16) {
      const batch = all.slice(i, i + 16)
      const results = await Promise.all(batch.map(send))
      for (const [j, r] of results.entries()) {
        const c = batch[j]!
        const label = `${c.method ?? 'POST'} ${c.path} ${c.label} → ${r.status}`
        try {
          assert.ok(r.status >= 400 && r.status < 500, label)
          assertDialectShape(c.dialect, r.body, label)
        } catch {
          failures.push(`${label} ${JSON.stringify(r.body).slice(0, 200)}`)
        }
      }
      if (i % 160 === 0) await stillServes()
    }
    await stillServes()
    assert.deepEqual(failures, [], `${failures.length} of ${all.length} cases failed`)
    assert.ok(Date.now() - started < 60_000)
    console.log(`# ${all.length} hostile requests in ${Date.now() - started} ms`)
  })
})
