import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Libp2p } from '@libp2p/interface'
import { ReturnHops } from '../../src/node/pipeline/return-hops.js'
import { StageRunner } from '../../src/node/pipeline/stage-runner.js'
import { ACTIVATIONS_PROTOCOL, ActivationChannel, createActivationsHandler, prefillChunks } from '../../src/protocols/activations/index.js'
import type { OpenFrame } from '../../src/protocols/activations/index.js'
import type { ForwardInput, ForwardOutput, ModelMetadata, ShardSession } from '../../src/engine/types.js'
import { asPlanId, asRequestId } from '../../src/shared/ids.js'
import { DType } from '../../src/shared/tensor.js'
import { startNode } from '../helpers/libp2p-pair.js'

const PLAN = asPlanId('c3'.repeat(32))
const N_EMBD = 32
const N_VOCAB = 50

/** Middle stage: hidden × 2 + 1. Last stage: token = round(Σ last row) mod nVocab. */
class FakeSession implements ShardSession {
  position = 0
  constructor (readonly contextSize: number, private readonly last: boolean, private readonly live: Set<FakeSession>) { live.add(this) }
  async forward (input: ForwardInput): Promise<ForwardOutput> {
    if (input.kind !== 'hidden') throw new Error('hidden only')
    this.position += input.nTokens
    if (!this.last) return { kind: 'hidden', hidden: input.hidden.map((x) => x * 2 + 1), nTokens: input.nTokens }
    const row = input.hidden.subarray((input.nTokens - 1) * N_EMBD)
    const logits = new Float32Array(N_VOCAB)
    logits[Math.round(row.reduce((a, b) => a + b, 0)) % N_VOCAB] = 1
    return { kind: 'logits', logits, nRows: 1 }
  }
  truncate (p: number): void { this.position = p }
  dispose (): void { this.live.delete(this) }
}

const expectedToken = (value: number): number => Math.round(N_EMBD * (value * 2 + 1)) % N_VOCAB

let nodes: Libp2p[]
let returnHops: ReturnHops
const live = new Set<FakeSession>()
const runners: StageRunner[] = []

before(async () => {
  nodes = await Promise.all([startNode(), startNode(), startNode()])
  returnHops = new ReturnHops(PLAN)
  await nodes[0]!.handle(ACTIVATIONS_PROTOCOL, createActivationsHandler(returnHops))
  for (const i of [1, 2]) {
    const next = nodes[(i + 1) % 3]!
    const runner = new StageRunner({
      planId: PLAN,
      stageIndex: i,
      nStages: 3,
      shard: { isLast: i === 2, metadata: { nEmbd: N_EMBD, contextLength: 1024 } as ModelMetadata, createSession: ({ contextSize }) => new FakeSession(contextSize, i === 2, live) },
      dialNext: async (open, signal) => await ActivationChannel.dial(await nodes[i]!.dialProtocol(next.getMultiaddrs()[0]!, ACTIVATIONS_PROTOCOL, { signal }), open, { signal }),
      createSampler: () => ({ sample: (l) => l.indexOf(1) })
    })
    runners.push(runner)
    await nodes[i]!.handle(ACTIVATIONS_PROTOCOL, createActivationsHandler(runner))
  }
})
after(async () => { await Promise.all(nodes.map(async (n) => { await n.stop() })) })

async function startRequest (id: string): Promise<{ ch: ActivationChannel, hop: ReturnType<ReturnHops['expect']>, open: OpenFrame }> {
  const open: OpenFrame = { type: 'open', requestId: asRequestId(id), planId: PLAN, toStage: 1, contextSize: 512, sampling: { temperature: 0 } }
  const hop = returnHops.expect(open.requestId)
  const stream = await nodes[0]!.dialProtocol(nodes[1]!.getMultiaddrs()[0]!, ACTIVATIONS_PROTOCOL)
  return { ch: await ActivationChannel.dial(stream, open), hop, open }
}

test('a request goes around the ring: prefill, decode steps, END — and every stage frees its session', async () => {
  const runOne = async (id: string, promptLen: number, steps: number): Promise<number[]> => {
    const { ch, hop, open } = await startRequest(id)
    const tokens: number[] = []
    for (const c of prefillChunks(0, promptLen, N_EMBD)) {
      await ch.send({ type: 'prefill', requestId: open.requestId, planId: PLAN, start: c.start, count: c.count, last: c.last, dtype: DType.F32, nEmbd: N_EMBD, hidden: new Float32Array(c.count * N_EMBD).fill(0.5) })
    }
    let pos = promptLen
    for (let s = 0; s < steps; s++) {
      const r = await hop.next(AbortSignal.timeout(5000))
      assert.ok(r !== undefined)
      assert.equal(r.position, pos)
      tokens.push(r.tokenId)
      // "embed" the token: a row filled with tokenId / 10
      await ch.send({ type: 'decode', requestId: open.requestId, planId: PLAN, start: pos, count: 1, last: false, dtype: DType.F32, nEmbd: N_EMBD, hidden: new Float32Array(N_EMBD).fill(r.tokenId / 10) })
      pos++
    }
    const r = await hop.next(AbortSignal.timeout(5000))
    tokens.push(r!.tokenId)
    await ch.send({ type: 'end', requestId: open.requestId, planId: PLAN })
    await ch.close()
    assert.equal(await hop.next(AbortSignal.timeout(5000)), undefined, 'END came around the ring')
    hop.release()
    return tokens
  }
  const results = await Promise.all([runOne('ring-1', 300, 4), runOne('ring-2', 7, 6)])
  for (const [tokens, steps] of [[results[0]!, 4], [results[1]!, 6]] as const) {
    let v = 0.5
    const expected: number[] = []
    for (let s = 0; s <= steps; s++) { const t = expectedToken(v); expected.push(t); v = t / 10 }
    assert.deepEqual(tokens, expected)
  }
  for (let i = 0; i < 100 && (live.size > 0 || runners.some((r) => r.activeSessions > 0)); i++) await sleep(10)
  assert.equal(live.size, 0)
  assert.equal(returnHops.pending, 0)
})

test('cancellation at stage 0 (reset) frees the sessions of every stage', async () => {
  const { ch, hop, open } = await startRequest('ring-3')
  await ch.send({ type: 'prefill', requestId: open.requestId, planId: PLAN, start: 0, count: 5, last: true, dtype: DType.F32, nEmbd: N_EMBD, hidden: new Float32Array(5 * N_EMBD) })
  assert.ok((await hop.next(AbortSignal.timeout(5000))) !== undefined)
  assert.equal(live.size, 2)
  ch.abort(new Error('client disconnected'))
  hop.release()
  for (let i = 0; i < 200 && (live.size > 0 || runners.some((r) => r.activeSessions > 0)); i++) await sleep(10)
  assert.equal(live.size, 0, 'no KV cache left behind')
  assert.equal(returnHops.pending, 0)
})

test('a stage that holds another plan refuses; the code reaches stage 0', async () => {
  const open: OpenFrame = { type: 'open', requestId: asRequestId('ring-4'), planId: asPlanId('d4'.repeat(32)), toStage: 1, contextSize: 16 }
  const ch = await ActivationChannel.dial(await nodes[0]!.dialProtocol(nodes[1]!.getMultiaddrs()[0]!, ACTIVATIONS_PROTOCOL), open)
  await assert.rejects(ch.next({ timeoutMs: 5000 }), (e) => (e as { code: string }).code === 'ACTIVATIONS_PLAN_MISMATCH')
})
