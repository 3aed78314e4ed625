import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Libp2p } from '@libp2p/interface'
import { createInferenceHandler, INFERENCE_PROTOCOL, requestInference } from '../../src/protocols/inference/index.js'
import type { InferencePort } from '../../src/protocols/inference/index.js'
import { ExoError } from '../../src/shared/errors/exo-error.js'
import { RemoteInferenceError } from '../../src/shared/errors/protocol-errors.js'
import { asModelId, asRequestId } from '../../src/shared/ids.js'
import type { GenerationEvent, InferenceRequest } from '../../src/shared/inference.js'
import { startPair, stopPair } from '../helpers/libp2p-pair.js'

class NoPlanError extends ExoError { readonly code = 'NO_PLAN' }

const req = (id: string, text: string, maxTokens = 5): InferenceRequest => ({
  id: asRequestId(id), model: asModelId('m'), prompt: { kind: 'text', text }, maxTokens, sampling: { temperature: 0 }, stop: []
})

/** A port that "generates" the prompt's words back, one per 5 ms; records cancellations. */
const cancelled: string[] = []
const port: InferencePort = {
  async * generate (r, { signal }) {
    if (r.prompt.kind === 'text' && r.prompt.text === 'fail') throw new NoPlanError('model m needs 1.2 GB, the 3 nodes offer 0.9 GB in total')
    const words = r.prompt.kind === 'text' ? r.prompt.text.split(' ') : []
    let n = 0
    try {
      for (; n < r.maxTokens; n++) {
        await sleep(5, undefined, { signal })
        yield { type: 'token', tokenId: n, text: words[n % words.length]! }
      }
    } catch (err) {
      if (signal.aborted) cancelled.push(r.id)
      throw err
    }
    yield { type: 'done', finishReason: 'length', usage: { promptTokens: words.length, completionTokens: n } }
  }
}

let pair: { a: Libp2p, b: Libp2p }
before(async () => {
  pair = await startPair()
  await pair.b.handle(INFERENCE_PROTOCOL, createInferenceHandler(port))
})
after(async () => { await stopPair(pair) })

async function collect (r: InferenceRequest, signal = AbortSignal.timeout(10_000)): Promise<GenerationEvent[]> {
  const stream = await pair.a.dialProtocol(pair.b.peerId, INFERENCE_PROTOCOL, { signal })
  const out: GenerationEvent[] = []
  for await (const e of requestInference(stream, r, { signal })) out.push(e)
  return out
}

test('a request streams its tokens and one done event back, several at once', async () => {
  const results = await Promise.all([collect(req('r1', 'once upon a time', 4)), collect(req('r2', 'héllo wörld ✓', 3))])
  assert.deepEqual(results[0]!.map((e) => (e.type === 'token' ? e.text : e.type)), ['once', 'upon', 'a', 'time', 'done'])
  assert.deepEqual(results[1]!.map((e) => (e.type === 'token' ? e.text : e.type)), ['héllo', 'wörld', '✓', 'done'])
  assert.deepEqual(results[1]!.at(-1), { type: 'done', finishReason: 'length', usage: { promptTokens: 3, completionTokens: 3 } })
})

test('an ExoError of the port arrives as RemoteInferenceError with the same code', async () => {
  await assert.rejects(collect(req('r3', 'fail')), (e) => e instanceof RemoteInferenceError && e.code === 'NO_PLAN' && /0\.9 GB/.test(e.message))
})

test('aborting the client, or leaving the loop early, cancels the generation on the server', async () => {
  const ac = new AbortController()
  const stream = await pair.a.dialProtocol(pair.b.peerId, INFERENCE_PROTOCOL)
  const seen: string[] = []
  await assert.rejects((async () => {
    for await (const e of requestInference(stream, req('r4', 'a b c', 1000), { signal: ac.signal })) {
      if (e.type === 'token') seen.push(e.text)
      if (seen.length === 2) ac.abort()
    }
  })(), (e) => e instanceof ExoError && e.code === 'ABORTED')
  const s2 = await pair.a.dialProtocol(pair.b.peerId, INFERENCE_PROTOCOL)
  for await (const e of requestInference(s2, req('r5', 'x', 1000), { signal: AbortSignal.timeout(10_000) })) { if (e.type === 'token') break }
  for (let i = 0; i < 100 && cancelled.length < 2; i++) await sleep(20)
  assert.deepEqual([...cancelled].sort(), ['r4', 'r5'])
  assert.equal(seen.length, 2)
})

test('garbage and oversized frames reset that stream; the node keeps serving', async () => {
  const bad = await pair.a.dialProtocol(pair.b.peerId, INFERENCE_PROTOCOL)
  const head = new Uint8Array(5)
  new DataView(head.buffer).setUint32(0, 64 * 1024 * 1024, true) // 64 MiB > 8 MiB limit
  bad.send(head)
  await new Promise<void>((resolve) => bad.addEventListener('close', () => { resolve() }))
  assert.equal(bad.status, 'reset')
  // a malformed REQUEST gets an ERROR BAD_REQUEST
  const bad2 = await pair.a.dialProtocol(pair.b.peerId, INFERENCE_PROTOCOL)
  await assert.rejects(async () => {
    for await (const _ of requestInference(bad2, { ...req('r6', 'x'), maxTokens: 0 }, { signal: AbortSignal.timeout(5000) })) { /* none */ }
  }, (e) => e instanceof RemoteInferenceError && e.code === 'BAD_REQUEST' && /maxTokens/.test(e.message))
  const ok = await collect(req('r7', 'still here', 2))
  assert.equal(ok.at(-1)?.type, 'done')
})
