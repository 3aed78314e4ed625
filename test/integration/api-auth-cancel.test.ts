import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'
import { Ollama } from 'ollama'
import { startApiServer } from './helpers/api-server.js'
import type { ApiServer } from './helpers/api-server.js'
import type { FinishReason, GenerationEvent, InferenceRequest } from '../../src/shared/inference.js'

/** API key on every route, client disconnect → cancelled generation, context too long → 400. */
const MODEL = 'stories260k-f32'
const KEY = 'sk-test-0123456789'

interface Observed { signal: AbortSignal, finish?: FinishReason, tokens: number, ended: Promise<void> }
const observed: Observed[] = []
let server: ApiServer

before(async () => {
  server = await startApiServer({
    apiKey: KEY,
    wrap: (local) => ({
      generate: (req: InferenceRequest, options: { signal: AbortSignal }) => {
        let resolveEnded: () => void = () => {}
        const o: Observed = { signal: options.signal, tokens: 0, ended: new Promise((resolve) => { resolveEnded = resolve }) }
        observed.push(o)
        return (async function * (): AsyncGenerator<GenerationEvent> {
          try {
            for await (const ev of local.generate(req, options)) {
              if (ev.type === 'token') o.tokens++
              else o.finish = ev.finishReason
              yield ev
            }
          } finally { resolveEnded() }
        })()
      },
      countTokens: async (req, options) => await local.countTokens(req, options),
      listModels: async (options) => await local.listModels(options)
    })
  })
})
after(async () => { await server.close() })

describe('API key', () => {
  it('is required by every dialect, as bearer or x-api-key', async () => {
    const good = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 })
    assert.ok((await good.models.list()).data.length > 0)
    await assert.rejects(new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'wrong', maxRetries: 0 }).models.list(), OpenAI.AuthenticationError)
    const anthropic = new Anthropic({ baseURL: server.url, apiKey: KEY, maxRetries: 0 })
    assert.ok((await anthropic.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })).input_tokens > 0)
    await assert.rejects(new Anthropic({ baseURL: server.url, apiKey: 'wrong', maxRetries: 0 }).messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }), Anthropic.AuthenticationError)
    const ollama = new Ollama({ host: server.url, headers: { Authorization: `Bearer ${KEY}` } })
    assert.ok((await ollama.list()).models.length > 0)
    await assert.rejects(new Ollama({ host: server.url }).list(), (err: unknown) => (err as { status_code?: number }).status_code === 401)
    for (const [path, shape] of [['/v1/chat/completions', 'openai'], ['/v1/messages', 'anthropic'], ['/api/generate', 'ollama']] as const) {
      const res = await fetch(server.url + path, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
      assert.equal(res.status, 401)
      const body = await res.json() as any
      if (shape === 'openai') assert.equal(body.error.type, 'authentication_error')
      if (shape === 'anthropic') assert.deepEqual([body.type, body.error.type], ['error', 'authentication_error'])
      if (shape === 'ollama') assert.equal(typeof body.error, 'string')
    }
  })
})

describe('cancellation and limits', () => {
  const openai = (): OpenAI => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 })

  it('a client that disconnects mid-stream cancels the generation', async () => {
    for (const dialect of ['openai', 'ollama'] as const) {
      const before = observed.length
      const controller = new AbortController()
      let chunks = 0
      try {
        if (dialect === 'openai') {
          const stream = await openai().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 1500, stream: true }, { signal: controller.signal })
          for await (const _c of stream) { if (++chunks === 5) controller.abort() }
        } else {
          const res = await fetch(`${server.url}/api/generate`, { method: 'POST', signal: controller.signal, headers: { authorization: `Bearer ${KEY}` }, body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time', options: { num_predict: 1500 } }) })
          const reader = res.body!.getReader()
          while (!(await reader.read()).done) { if (++chunks === 5) controller.abort() }
        }
      } catch (err) {
        assert.ok(controller.signal.aborted, `only the abort may end the stream: ${String(err)}`)
      }
      const o = observed[before]
      assert.ok(o !== undefined)
      await o.ended
      assert.equal(o.signal.aborted, true, `${dialect}: the service's signal was aborted`)
      assert.ok(o.tokens < 1500, `${dialect}: stopped after ${o.tokens} tokens`)
      assert.notEqual(o.finish, 'length')
    }
  })

  it('a prompt longer than the context is a 400 in each dialect', async () => {
    const long = 'the cat sat on the mat and '.repeat(800)
    await assert.rejects(openai().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: long }], max_tokens: 5 }), (err: unknown) => {
      assert.ok(err instanceof OpenAI.BadRequestError)
      assert.match(err.message, /context/i)
      return true
    })
    const res = await fetch(`${server.url}/v1/messages`, { method: 'POST', headers: { 'x-api-key': KEY }, body: JSON.stringify({ model: MODEL, max_tokens: 5, stream: true, messages: [{ role: 'user', content: long }] }) })
    assert.equal(res.status, 400, 'before any SSE byte')
    assert.equal(((await res.json()) as any).error.type, 'invalid_request_error')
  })
})
