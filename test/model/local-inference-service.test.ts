/**
 * LocalInferenceService on real ggml (bundled stories260k): seeded sampling, stop strings, chat prompts,
 * token counting, model listing, typed errors, concurrent requests, cancellation.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { ggmlShardEngine } from '../../src/node/ggml-shard-engine.js'
import { LocalInferenceService } from '../../src/node/local-inference-service.js'
import { ContextTooLongError } from '../../src/shared/errors/generation-errors.js'
import { UnknownModelError } from '../../src/shared/errors/model-errors.js'
import { asModelId, asRequestId } from '../../src/shared/ids.js'
import { referenceGreedy } from './helpers/completion-reference.js'
import type { GenerationEvent, InferenceRequest } from '../../src/shared/inference.js'

const MODEL = asModelId('stories260k-f32')
const signal = (): AbortSignal => AbortSignal.timeout(30_000)

function request (over: Partial<InferenceRequest> = {}): InferenceRequest {
  return { id: asRequestId('req_test'), model: MODEL, prompt: { kind: 'text', text: 'Once upon a time' }, maxTokens: 30, sampling: { temperature: 0 }, stop: [], ...over }
}

async function collect (events: AsyncIterable<GenerationEvent>): Promise<{ text: string, tokens: number[], done: Extract<GenerationEvent, { type: 'done' }> }> {
  let text = ''
  const tokens: number[] = []
  for await (const e of events) {
    if (e.type === 'token') { text += e.text; tokens.push(e.tokenId) } else return { text, tokens, done: e }
  }
  throw new Error('generation ended without a done event')
}

describe('LocalInferenceService (stories260k, 2 in-process shards)', () => {
  const service = new LocalInferenceService({ engine: ggmlShardEngine, shards: 2, threads: 1, nodeName: 'test-node' })
  after(async () => { await service.dispose() })

  test('greedy text equals LlamaCompletion; usage and finish reason', async () => {
    const ref = await referenceGreedy('models/stories260k-f32.gguf', 'Once upon a time', 30)
    const r = await collect(service.generate(request(), { signal: signal() }))
    assert.equal(r.text, ref.text)
    assert.deepEqual(r.done.usage, { promptTokens: await service.countTokens(request(), { signal: signal() }), completionTokens: 30 })
    assert.equal(r.done.finishReason, 'length')
  })

  test('same seed ⇒ same tokens; another seed ⇒ other tokens', async () => {
    const sampled = async (seed: number): Promise<number[]> => (await collect(service.generate(request({ maxTokens: 40, sampling: { temperature: 1.2, seed, topK: 0, topP: 1, minP: 0 } }), { signal: signal() }))).tokens
    const a = await sampled(42)
    assert.deepEqual(await sampled(42), a)
    assert.notDeepEqual(await sampled(7), a)
  })

  test('a stop string ends the generation and is not emitted', async () => {
    const whole = (await collect(service.generate(request(), { signal: signal() }))).text
    const stop = 'Lily'
    const r = await collect(service.generate(request({ stop: [stop] }), { signal: signal() }))
    assert.equal(r.text, whole.slice(0, whole.indexOf(stop)))
    assert.equal(r.done.finishReason, 'stop')
  })

  test('chat prompt (through the model\'s chat wrapper) generates; countTokens counts the templated prompt', async () => {
    const chat: InferenceRequest['prompt'] = { kind: 'chat', messages: [{ role: 'system', content: 'Tell stories.' }, { role: 'user', content: 'A story about a cat' }] }
    const n = await service.countTokens({ model: MODEL, prompt: chat }, { signal: signal() })
    const plain = await service.countTokens({ model: MODEL, prompt: { kind: 'text', text: 'Tell stories. A story about a cat' } }, { signal: signal() })
    assert.ok(n > plain + 5, `templated ${n} vs plain ${plain}`)
    const r = await collect(service.generate(request({ prompt: chat, maxTokens: 10 }), { signal: signal() }))
    assert.equal(r.done.usage.promptTokens, n)
    assert.ok(r.done.usage.completionTokens >= 1)
  })

  test('listModels describes the bundled model', async () => {
    const models = await service.listModels({ signal: signal() })
    const m = models.find((x) => x.id === MODEL)
    assert.ok(m !== undefined)
    assert.deepEqual({ ...m, sizeBytes: m.sizeBytes > 0 }, { id: MODEL, sizeBytes: true, architecture: 'llama', nLayers: 5, contextLength: 2048, hasChatTemplate: false, heldBy: ['test-node'] })
  })

  test('unknown model and too-long prompt are typed errors', async () => {
    await assert.rejects(collect(service.generate(request({ model: asModelId('nope') }), { signal: signal() })), (e: unknown) => e instanceof UnknownModelError && e.message.includes('stories260k-f32'))
    await assert.rejects(service.countTokens({ model: asModelId('nope'), prompt: { kind: 'text', text: 'x' } }, { signal: signal() }), UnknownModelError)
    const small = new LocalInferenceService({ engine: ggmlShardEngine, contextSize: 8 })
    try {
      await assert.rejects(collect(small.generate(request({ prompt: { kind: 'text', text: 'Once upon a time there was a dog' } }), { signal: signal() })), ContextTooLongError)
    } finally { await small.dispose() }
  })

  test('concurrent requests each get their own sessions and the same greedy text', async () => {
    const alone = (await collect(service.generate(request(), { signal: signal() }))).text
    const both = await Promise.all([collect(service.generate(request(), { signal: signal() })), collect(service.generate(request(), { signal: signal() }))])
    assert.deepEqual(both.map((r) => r.text), [alone, alone])
  })

  test('abort ends with cancelled', async () => {
    const ac = new AbortController()
    let tokens = 0
    let done: GenerationEvent | undefined
    for await (const e of service.generate(request({ maxTokens: 500 }), { signal: ac.signal })) {
      if (e.type === 'token' && ++tokens === 3) ac.abort()
      if (e.type === 'done') done = e
    }
    assert.equal(done?.type === 'done' ? done.finishReason : undefined, 'cancelled')
    assert.ok(done?.type === 'done' && done.usage.completionTokens < 10)
  })

  test('dispose cancels a running generation, then frees the model', async () => {
    const own = new LocalInferenceService({ engine: ggmlShardEngine, shards: 2 })
    const events: GenerationEvent[] = []
    for await (const e of own.generate(request({ maxTokens: 1000 }), { signal: signal() })) {
      events.push(e)
      if (events.length === 2) void own.dispose()
    }
    const done = events.at(-1)
    assert.equal(done?.type === 'done' ? done.finishReason : undefined, 'cancelled')
    await own.dispose()
    await assert.rejects(own.countTokens(request(), { signal: signal() }))
  })
})
