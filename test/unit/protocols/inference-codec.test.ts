import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeRequestFrame, decodeServerFrame, encodeRequestFrame, encodeServerFrame } from '../../../src/protocols/inference/codec.js'
import type { InferenceServerFrame } from '../../../src/protocols/inference/codec.js'
import { MAX_EVENT_BYTES, MAX_REQUEST_BYTES } from '../../../src/protocols/inference/constants.js'
import { FrameDecoder } from '../../../src/protocols/framing.js'
import type { RawFrame } from '../../../src/protocols/framing.js'
import { ProtocolDecodeError, ProtocolEncodeError } from '../../../src/shared/errors/protocol-errors.js'
import { asModelId, asRequestId } from '../../../src/shared/ids.js'
import type { InferenceRequest } from '../../../src/shared/inference.js'
import { prng, randomBytes } from '../../helpers/prng.js'

const request: InferenceRequest = {
  id: asRequestId('req_1'),
  model: asModelId('stories260k-f32'),
  prompt: { kind: 'chat', messages: [{ role: 'user', content: 'Hi ünïcode 👋' }, { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'f', arguments: '{}' }] }], tools: [{ name: 'f', parameters: { type: 'object' } }] },
  maxTokens: 16,
  sampling: { temperature: 0, topP: 0.9, seed: 1 },
  stop: ['\n\n'],
  grammar: { kind: 'json_schema', schema: { type: 'object' } }
}

const one = (bytes: Parameters<FrameDecoder['push']>[0], max: number): RawFrame => {
  const f = new FrameDecoder(max).push(bytes)
  assert.equal(f.length, 1)
  return f[0]!
}

test('REQUEST round-trips', () => {
  assert.deepEqual(decodeRequestFrame(one(encodeRequestFrame(request), MAX_REQUEST_BYTES)), request)
  const text: InferenceRequest = { id: asRequestId('r'), model: asModelId('m'), prompt: { kind: 'text', text: '' }, maxTokens: 1, sampling: {}, stop: [] }
  assert.deepEqual(decodeRequestFrame(one(encodeRequestFrame(text), MAX_REQUEST_BYTES)), text)
  const resumed: InferenceRequest = { ...request, maxTokens: 8, resumeTokens: [0, 17, 4_000_000_000] }
  assert.deepEqual(decodeRequestFrame(one(encodeRequestFrame(resumed), MAX_REQUEST_BYTES)), resumed)
})

test('server frames round-trip', () => {
  const frames: InferenceServerFrame[] = [
    { type: 'event', event: { type: 'token', tokenId: 0, text: '' } },
    { type: 'event', event: { type: 'token', tokenId: 4_000_000_000, text: ' upon ✓' } },
    { type: 'event', event: { type: 'done', finishReason: 'tool_calls', usage: { promptTokens: 3, completionTokens: 9 }, toolCalls: [{ id: 'a', name: 'b', arguments: '{"x":1}' }] } },
    { type: 'error', code: 'NO_PLAN', message: 'model needs 1.2 GB, the 3 nodes offer 0.9 GB' }
  ]
  for (const f of frames) assert.deepEqual(decodeServerFrame(one(encodeServerFrame(f), MAX_EVENT_BYTES)), f)
})

test('invalid requests are typed decode errors naming the field', () => {
  const enc = (o: unknown): RawFrame => ({ type: 1, body: new TextEncoder().encode(JSON.stringify(o)) })
  assert.throws(() => decodeRequestFrame(enc({ ...request, maxTokens: 0 })), /maxTokens/)
  assert.throws(() => decodeRequestFrame(enc({ ...request, id: 'has space' })), /id/)
  assert.throws(() => decodeRequestFrame(enc({ ...request, extra: true })), ProtocolDecodeError)
  assert.throws(() => decodeRequestFrame(enc({ ...request, sampling: { temperature: -1 } })), /sampling.temperature/)
  // failover: resumed tokens are token ids, and fewer than maxTokens
  assert.throws(() => decodeRequestFrame(enc({ ...request, maxTokens: 3, resumeTokens: [1, 2, 3] })), /resumeTokens/)
  assert.throws(() => decodeRequestFrame(enc({ ...request, maxTokens: 9, resumeTokens: [1, -2] })), /resumeTokens/)
  assert.throws(() => decodeRequestFrame(enc({ ...request, maxTokens: 9, resumeTokens: [1.5] })), /resumeTokens/)
  assert.throws(() => decodeRequestFrame({ type: 2, body: new Uint8Array(0) }), /expected REQUEST/)
  assert.throws(() => decodeRequestFrame({ type: 1, body: new Uint8Array([0xff, 0xfe]) }), /invalid UTF-8/)
  assert.throws(() => decodeServerFrame({ type: 4, body: new TextEncoder().encode('{"code":"lower","message":""}') }), /code/)
  assert.throws(() => encodeServerFrame({ type: 'error', code: 'bad code', message: '' }), ProtocolEncodeError)
})

test('fuzz: random and mutated frames raise only ProtocolDecodeError', () => {
  const rand = prng(11)
  const seeds = [
    one(encodeRequestFrame(request), MAX_REQUEST_BYTES),
    one(encodeServerFrame({ type: 'event', event: { type: 'token', tokenId: 5, text: 'héllo' } }), MAX_EVENT_BYTES),
    one(encodeServerFrame({ type: 'event', event: { type: 'done', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 2 } } }), MAX_EVENT_BYTES),
    one(encodeServerFrame({ type: 'error', code: 'BUSY', message: 'x' }), MAX_EVENT_BYTES)
  ]
  for (let i = 0; i < 10_000; i++) {
    let frame: RawFrame
    if (i % 2 === 0) {
      frame = { type: Math.floor(rand() * 6), body: randomBytes(rand, Math.floor(rand() * 80)) }
    } else {
      const s = seeds[i % seeds.length]!
      const body = s.body.slice()
      body[Math.floor(rand() * body.length)] = Math.floor(rand() * 256)
      frame = { type: s.type, body }
    }
    for (const decode of [decodeRequestFrame, decodeServerFrame]) {
      try { decode(frame) } catch (err) { assert.ok(err instanceof ProtocolDecodeError, `${i}: ${String(err)}`) }
    }
  }
})
