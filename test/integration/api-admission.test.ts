/**
 * Admission (issue 12 point 5) through the official openai, @anthropic-ai/sdk and ollama clients, against a real
 * HTTP server over the real local engine (stories260k) limited to 1 running sequence and 1 waiting: a request
 * beyond the queue gets HTTP 429 with Retry-After in each dialect's own error shape; a queued request completes
 * once the running one frees its slot; a queued request whose client goes away leaves the queue.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'
import { Ollama } from 'ollama'
import { startApiServer } from './helpers/api-server.js'
import { asModelId, asRequestId } from '../../src/shared/ids.js'
import type { ApiServer } from './helpers/api-server.js'
import type { GenerationEvent } from '../../src/shared/inference.js'

const MODEL = 'stories260k-f32'
let server: ApiServer
let openai: OpenAI
let anthropic: Anthropic
let ollama: Ollama
/** the generation that holds the only slot (left suspended after its first event) */
let holder: AsyncGenerator<GenerationEvent> | undefined

async function holdSlot (): Promise<void> {
  holder = server.local.generate({ id: asRequestId('holder'), model: asModelId(MODEL), prompt: { kind: 'text', text: 'Once upon a time' }, maxTokens: 500, sampling: { temperature: 0 }, stop: [] }, { signal: AbortSignal.timeout(60_000) })
  const first = await holder.next()
  assert.equal(first.done, false)
  assert.equal(server.local.admission.stats.running, 1)
}

async function releaseSlot (): Promise<void> { await holder?.return(undefined); holder = undefined }

async function waitQueued (n: number): Promise<void> {
  for (let i = 0; i < 500 && server.local.admission.stats.queued !== n; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.equal(server.local.admission.stats.queued, n)
}

before(async () => {
  server = await startApiServer({ local: { maxSequences: 1, maxQueue: 1 } })
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 })
  anthropic = new Anthropic({ baseURL: server.url, apiKey: 'unused', maxRetries: 0 })
  ollama = new Ollama({ host: server.url })
})
after(async () => { await releaseSlot(); await server.close() })

describe('admission: 1 running, 1 queued', () => {
  it('OpenAI: the queued request completes after the slot frees; one more gets 429 rate_limit_error with Retry-After', async () => {
    await holdSlot()
    const queued = openai.completions.create({ model: MODEL, prompt: 'The dog', max_tokens: 8, temperature: 0 })
    await waitQueued(1)
    const err = await openai.completions.create({ model: MODEL, prompt: 'The cat', max_tokens: 8, temperature: 0 }).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof OpenAI.RateLimitError, String(err))
    assert.equal(err.status, 429)
    assert.ok(Number(err.headers?.get('retry-after')) >= 1, `Retry-After ${String(err.headers?.get('retry-after'))}`)
    assert.equal((err.error as { type?: string }).type, 'rate_limit_error')
    assert.equal(err.code, 'BUSY')
    assert.match(err.message, /1 sequences running and 1 queued/)
    await releaseSlot()
    const r = await queued
    assert.equal(r.choices[0]?.finish_reason, 'length')
    assert.equal(r.usage?.completion_tokens, 8)
    assert.deepEqual({ ...server.local.admission.stats, admitted: 0 }, { limit: 1, capacityBytes: Infinity, usedBytes: 0, maxQueue: 1, running: 0, queued: 0, admitted: 0, rejected: 1 })
  })

  it('Anthropic: 429 rate_limit_error in the Messages shape, with Retry-After', async () => {
    await holdSlot()
    const queued = anthropic.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'The dog' }] })
    await waitQueued(1)
    const err = await anthropic.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'The cat' }] }).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof Anthropic.RateLimitError, String(err))
    assert.equal(err.status, 429)
    assert.ok(Number(err.headers?.get('retry-after')) >= 1)
    assert.deepEqual(Object.keys(err.error as object).sort(), ['error', 'type'])
    assert.equal((err.error as { type: string, error: { type: string } }).error.type, 'rate_limit_error')
    await releaseSlot()
    assert.equal((await queued).stop_reason, 'max_tokens')
  })

  it('Ollama: 429 with { error } (ResponseError.status_code 429); a streaming queued request completes', async () => {
    await holdSlot()
    const queued = (async () => {
      let n = 0
      for await (const part of await ollama.generate({ model: MODEL, prompt: 'The dog', stream: true, options: { num_predict: 8, temperature: 0 } })) if (part.done) n = part.eval_count
      return n
    })()
    await waitQueued(1)
    const err = await ollama.generate({ model: MODEL, prompt: 'The cat', options: { num_predict: 8 } }).then(() => undefined, (e: unknown) => e)
    assert.equal((err as { status_code?: number }).status_code, 429, String(err))
    assert.match((err as Error).message, /sequences running/)
    const raw = await fetch(`${server.url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: MODEL, prompt: 'x' }) })
    assert.equal(raw.status, 429)
    assert.ok(Number(raw.headers.get('retry-after')) >= 1)
    assert.deepEqual(Object.keys(await raw.json() as object), ['error'])
    await releaseSlot()
    assert.equal(await queued, 8)
  })

  it('a queued request whose client disconnects leaves the queue', async () => {
    await holdSlot()
    const ctrl = new AbortController()
    const gone = openai.completions.create({ model: MODEL, prompt: 'The dog', max_tokens: 8 }, { signal: ctrl.signal }).then(() => 'done', () => 'aborted')
    await waitQueued(1)
    ctrl.abort()
    assert.equal(await gone, 'aborted')
    await waitQueued(0)
    await releaseSlot()
    assert.equal(server.local.admission.stats.running, 0)
  })
})
