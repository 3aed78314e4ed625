import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateLocal } from '../../../src/node/local-generator.js'
import { ContextTooLongError } from '../../../src/shared/errors/generation-errors.js'
import type { ForwardInput, ForwardOutput, LoadedShard, ModelMetadata, ShardSession } from '../../../src/engine/types.js'
import type { GenerationEvent } from '../../../src/shared/inference.js'
import type { GenerationTokenizer } from '../../../src/node/local-generator.js'

/**
 * A toy model behind the engine contract: the hidden state of token t at position p is [t, p, 0, 0];
 * middle shards add 0.25 to element 3 per shard; the last shard puts logit 10 on (t + 1) % 8, so greedy
 * decoding counts upwards. Token 7 is end of generation; token t reads as the letter 'a' + t.
 */
const N_EMBD = 4
const N_VOCAB = 8
const meta: ModelMetadata = { architecture: 'toy', nLayers: 4, nEmbd: N_EMBD, nVocab: N_VOCAB, nHead: 1, nHeadKv: 1, nFf: 1, contextLength: 32, layerBytes: [], embeddingBytes: 0, outputBytes: 0, fileBytes: 0, kvBytesPerTokenPerLayer: 0 }

function toyShards (k: number, log: { batches: number[], disposed: number, created: number }): LoadedShard[] {
  return Array.from({ length: k }, (_, i): LoadedShard => ({
    metadata: meta,
    range: { start: i, end: i + 1 },
    isFirst: i === 0,
    isLast: i === k - 1,
    weightBytes: 0,
    dispose: async () => {},
    createSession: ({ contextSize }): ShardSession => {
      log.created++
      let position = 0
      return {
        get position () { return position },
        contextSize,
        truncate: (p) => { position = p },
        dispose: () => { log.disposed++ },
        forward: async (input: ForwardInput, options): Promise<ForwardOutput> => {
          if (options?.signal?.aborted === true) throw new Error('aborted')
          let rows: number[][]
          if (input.kind === 'tokens') {
            assert.equal(i, 0)
            log.batches.push(input.tokens.length)
            rows = Array.from(input.tokens, (t, j) => [t, position + j, 0, 0])
          } else {
            assert.ok(i > 0)
            rows = Array.from({ length: input.nTokens }, (_, j) => Array.from(input.hidden.subarray(j * N_EMBD, (j + 1) * N_EMBD)))
            rows.forEach((r) => { r[3]! += 0.25 })
          }
          position += rows.length
          assert.ok(position <= contextSize, 'cache overflow')
          if (i < k - 1) return { kind: 'hidden', hidden: Float32Array.from(rows.flat()), nTokens: rows.length }
          const last = rows.at(-1)!
          assert.equal(last[3], 0.25 * (k - 1), 'hidden state passed through every shard')
          const logits = new Float32Array(N_VOCAB)
          logits[(last[0]! + 1) % N_VOCAB] = 10
          return { kind: 'logits', logits, nRows: 1 }
        }
      }
    }
  }))
}

const tokenizer: GenerationTokenizer = {
  isEog: (t) => t === 7,
  createDecoder: () => ({ push: (t) => String.fromCharCode(97 + t), flush: () => '' })
}

async function collect (events: AsyncIterable<GenerationEvent>): Promise<{ text: string, done: Extract<GenerationEvent, { type: 'done' }> }> {
  let text = ''
  for await (const e of events) {
    if (e.type === 'token') text += e.text
    else return { text, done: e }
  }
  throw new Error('no done event')
}

const base = { tokenizer, sampling: { temperature: 0 }, stop: [] as string[], signal: new AbortController().signal }

for (const k of [1, 2, 4]) {
  test(`greedy until end of generation, ${k} shard(s), sessions freed`, async () => {
    const log = { batches: [] as number[], disposed: 0, created: 0 }
    const r = await collect(generateLocal({ ...base, signal: AbortSignal.timeout(10_000), shards: toyShards(k, log), promptTokens: [0], maxTokens: 20 }))
    assert.equal(r.text, 'bcdefg')
    assert.deepEqual(r.done, { type: 'done', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 7 } })
    assert.equal(log.created, k)
    assert.equal(log.disposed, k)
  })
}

test('maxTokens ends with length', async () => {
  const r = await collect(generateLocal({ ...base, signal: AbortSignal.timeout(10_000), shards: toyShards(2, { batches: [], disposed: 0, created: 0 }), promptTokens: [0], maxTokens: 3 }))
  assert.equal(r.text, 'bcd')
  assert.equal(r.done.finishReason, 'length')
  assert.equal(r.done.usage.completionTokens, 3)
})

test('stop string is not emitted; pending partial match is released when it fails', async () => {
  const r = await collect(generateLocal({ ...base, signal: AbortSignal.timeout(10_000), shards: toyShards(2, { batches: [], disposed: 0, created: 0 }), promptTokens: [0], maxTokens: 20, stop: ['ef', 'cx'] }))
  assert.equal(r.text, 'bcd')
  assert.equal(r.done.finishReason, 'stop')
})

test('prefill goes in chunks, then one token per forward', async () => {
  const log = { batches: [] as number[], disposed: 0, created: 0 }
  await collect(generateLocal({ ...base, signal: AbortSignal.timeout(10_000), shards: toyShards(3, log), promptTokens: [0, 1, 2, 3, 4, 5, 6, 0, 1, 2], maxTokens: 3, prefillChunk: 3 }))
  assert.deepEqual(log.batches, [3, 3, 3, 1, 1, 1])
})

test('a full context ends with length; a prompt that fills it is refused', async () => {
  const r = await collect(generateLocal({ ...base, signal: AbortSignal.timeout(10_000), shards: toyShards(1, { batches: [], disposed: 0, created: 0 }), promptTokens: [0, 0, 0, 0, 0, 0, 0, 0], maxTokens: 100, contextSize: 10 }))
  assert.equal(r.done.usage.completionTokens, 3) // 8 prompt + 2 forwarded; the third sample needs no cell
  assert.equal(r.done.finishReason, 'length')
  await assert.rejects(collect(generateLocal({ ...base, shards: toyShards(1, { batches: [], disposed: 0, created: 0 }), promptTokens: Array(10).fill(0), maxTokens: 1, contextSize: 10 })), ContextTooLongError)
})

test('abort ends with cancelled and frees the sessions; so does a consumer that stops early', async () => {
  const log = { batches: [] as number[], disposed: 0, created: 0 }
  const ac = new AbortController()
  const events: GenerationEvent[] = []
  for await (const e of generateLocal({ ...base, signal: ac.signal, shards: toyShards(2, log), promptTokens: [0], maxTokens: 20 })) {
    events.push(e)
    if (events.length === 2) ac.abort()
  }
  assert.deepEqual(events.at(-1), { type: 'done', finishReason: 'cancelled', usage: { promptTokens: 1, completionTokens: 2 } })
  assert.equal(log.disposed, 2)
  const log2 = { batches: [] as number[], disposed: 0, created: 0 }
  for await (const e of generateLocal({ ...base, signal: AbortSignal.timeout(10_000), shards: toyShards(3, log2), promptTokens: [0], maxTokens: 20 })) { if (e.type === 'token') break }
  assert.equal(log2.disposed, 3)
})
