import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Libp2p } from '@libp2p/interface'
import { generateAsFirstStage } from '../../src/node/pipeline/first-stage.js'
import type { FirstStageTokenizer } from '../../src/node/pipeline/first-stage.js'
import { ReturnHops } from '../../src/node/pipeline/return-hops.js'
import { StageRunner } from '../../src/node/pipeline/stage-runner.js'
import { createStageSampler } from '../../src/node/pipeline/stage-sampler.js'
import { ACTIVATIONS_PROTOCOL, ActivationChannel, createActivationsHandler } from '../../src/protocols/activations/index.js'
import type { OpenFrame } from '../../src/protocols/activations/index.js'
import type { ForwardInput, ForwardOutput, LoadedShard, ModelMetadata, ShardSession } from '../../src/engine/types.js'
import type { Plan } from '../../src/planner/index.js'
import type { GenerationEvent, InferenceRequest } from '../../src/shared/inference.js'
import { asModelId, asNodeId, asPlanId, asRequestId } from '../../src/shared/ids.js'
import { startNode } from '../helpers/libp2p-pair.js'

/**
 * Stage 0 driving a request over a real libp2p hop to a last stage: a toy model whose hidden state of
 * token t is [t, position, 0, 0] and whose last stage puts the top logit on (t + 1) % 8, so greedy
 * decoding counts upwards from the last prompt token; token 7 ends generation.
 */
const N_EMBD = 4
const N_VOCAB = 8
const PLAN = asPlanId('a1'.repeat(32))
const meta = { nEmbd: N_EMBD, nVocab: N_VOCAB, contextLength: 64, nLayers: 2 } as ModelMetadata
const live = new Set<string>()

function toyShard (first: boolean): LoadedShard {
  return {
    metadata: meta, range: first ? { start: 0, end: 1 } : { start: 1, end: 2 }, isFirst: first, isLast: !first, weightBytes: 0,
    dispose: async () => {},
    createSession: ({ contextSize }): ShardSession => {
      const key = `${first ? 's0' : 's1'}-${Math.random()}`
      live.add(key)
      let position = 0
      return {
        get position () { return position },
        contextSize,
        truncate: (p) => { position = p },
        dispose: () => { live.delete(key) },
        forward: async (input: ForwardInput): Promise<ForwardOutput> => {
          await sleep(1)
          if (input.kind === 'tokens') {
            const rows = Array.from(input.tokens, (t, j) => [t, position + j, 0, 0])
            position += rows.length
            return { kind: 'hidden', hidden: Float32Array.from(rows.flat()), nTokens: rows.length }
          }
          position += input.nTokens
          const last = input.hidden[(input.nTokens - 1) * N_EMBD]!
          const logits = new Float32Array(N_VOCAB)
          logits[(last + 1) % N_VOCAB] = 10
          return { kind: 'logits', logits, nRows: 1 }
        }
      }
    }
  }
}

const tokenizer = (eog: number | undefined): FirstStageTokenizer => ({
  renderPrompt: () => ({ tokens: [1, 2], stop: [] }),
  isEog: (t) => t === eog,
  createDecoder: () => ({ push: (t: number) => String.fromCharCode(97 + t), flush: () => '' })
})

let a: Libp2p
let b: Libp2p
let runner: StageRunner
const returnHops = new ReturnHops(PLAN)

function plan (id = PLAN): Plan {
  return {
    kind: 'plan', id, modelId: asModelId('toy'), nLayers: 2, predictedMsPerToken: 1, ringRttMs: 1,
    stages: [{ peerId: asNodeId(a.peerId.toString()), name: 'a', start: 0, end: 1, computeMs: 0, memoryBytes: 0 }, { peerId: asNodeId(b.peerId.toString()), name: 'b', start: 1, end: 2, computeMs: 0, memoryBytes: 0 }]
  }
}

async function * run (p: Plan, hops: ReturnHops, eog: number | undefined, maxTokens: number, signal: AbortSignal): AsyncGenerator<GenerationEvent> {
  const request: InferenceRequest = { id: asRequestId('req-1'), model: asModelId('toy'), prompt: { kind: 'text', text: 'x' }, maxTokens, sampling: { temperature: 0 }, stop: [] }
  yield * generateAsFirstStage({
    request, plan: p, shard: toyShard(true), modelPath: '/nonexistent', tokenizer: tokenizer(eog), returnHops: hops,
    dialStage1: async (open: OpenFrame, s: AbortSignal) => await ActivationChannel.dial(await a.dialProtocol(b.getMultiaddrs()[0]!, ACTIVATIONS_PROTOCOL, { signal: s }), open, { signal: s }),
    signal
  })
}

async function sessionsFreed (): Promise<void> {
  for (let i = 0; i < 200 && (live.size > 0 || runner.activeSessions > 0 || returnHops.pending > 0); i++) await sleep(10)
  assert.equal(live.size, 0, 'no KV cache left on any stage')
  assert.equal(returnHops.pending, 0)
}

before(async () => {
  [a, b] = await Promise.all([startNode(), startNode()])
  await a.handle(ACTIVATIONS_PROTOCOL, createActivationsHandler(returnHops))
  runner = new StageRunner({
    planId: PLAN, stageIndex: 1, nStages: 2, shard: toyShard(false),
    dialNext: async (open, signal) => await ActivationChannel.dial(await b.dialProtocol(a.getMultiaddrs()[0]!, ACTIVATIONS_PROTOCOL, { signal }), open, { signal }),
    createSampler: async (open, signal) => await createStageSampler(open, '/nonexistent', signal)
  })
  await b.handle(ACTIVATIONS_PROTOCOL, createActivationsHandler(runner))
})
after(async () => { await Promise.all([a.stop(), b.stop()]) })

describe('first stage driving a two-stage ring', () => {
  it('prefills, decodes with the last stage sampling, ends on end-of-generation and frees every session', async () => {
    const events: GenerationEvent[] = []
    for await (const e of run(plan(), returnHops, 7, 20, AbortSignal.timeout(10_000))) events.push(e)
    assert.equal(events.filter((e) => e.type === 'token').map((e) => (e as { text: string }).text).join(''), 'defg')
    assert.deepEqual(events.at(-1), { type: 'done', finishReason: 'stop', usage: { promptTokens: 2, completionTokens: 5 } })
    await sessionsFreed()
  })

  it('a stage that holds another plan refuses: the request fails with PLAN_MISMATCH instead of hanging', async () => {
    const other = asPlanId('b2'.repeat(32))
    await assert.rejects(async () => { for await (const _ of run(plan(other), new ReturnHops(other), 7, 20, AbortSignal.timeout(5000))) { /* drain */ } },
      (err: unknown) => (err as { code?: string }).code === 'ACTIVATIONS_PLAN_MISMATCH')
    await sessionsFreed()
  })

  it('cancellation mid-stream resets the ring and frees every session', async () => {
    const ctrl = new AbortController()
    let tokens = 0
    let last: GenerationEvent | undefined
    for await (const e of run(plan(), returnHops, undefined, 1000, ctrl.signal)) {
      last = e
      if (e.type === 'token' && ++tokens === 5) ctrl.abort()
    }
    assert.equal(last?.type === 'done' ? last.finishReason : undefined, 'cancelled')
    await sessionsFreed()
  })
})
