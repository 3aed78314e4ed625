/**
 * Prefix reuse across the stages of a plan (protocols/activations.md "Prefix reuse"), real ggml: stage 0 drives
 * stories260k layers [0, 3) and a real StageRunner runs [3, 5) over a libp2p hop. Turn 2 of a conversation
 * reuses both stages' retained KV and gives the greedy tokens of a cold run; a later stage that evicted its KV
 * answers PREFIX_MISSING and stage 0 falls back to a cold prefill with the same tokens; nothing leaks.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Libp2p } from '@libp2p/interface'
import { loadShard } from '../../src/engine/index.js'
import { Tokenizer } from '../../src/engine/tokenizer.js'
import { generateAsFirstStage } from '../../src/node/pipeline/first-stage.js'
import { ReturnHops } from '../../src/node/pipeline/return-hops.js'
import { StageRunner } from '../../src/node/pipeline/stage-runner.js'
import { StageRetention } from '../../src/node/pipeline/stage-retention.js'
import { createStageSampler } from '../../src/node/pipeline/stage-sampler.js'
import { sessionChainCache, sessionKvBytes } from '../../src/node/prefix-reuse.js'
import { ACTIVATIONS_PROTOCOL, ActivationChannel, createActivationsHandler } from '../../src/protocols/activations/index.js'
import type { OpenFrame } from '../../src/protocols/activations/index.js'
import type { LoadedShard } from '../../src/engine/types.js'
import type { Plan } from '../../src/planner/index.js'
import type { InferenceRequest } from '../../src/shared/inference.js'
import { asModelId, asNodeId, asPlanId, asRequestId } from '../../src/shared/ids.js'
import { startNode } from '../helpers/libp2p-pair.js'

const MODEL = 'models/stories260k-f32.gguf'
const PLAN = asPlanId('c3'.repeat(32))
const STORY = 'Once upon a time there was a little girl named Lily. She liked to play in the park with her dog. '

let a: Libp2p
let b: Libp2p
let s0: LoadedShard
let s1: LoadedShard
let tokenizer: Tokenizer
let runner: StageRunner
const returnHops = new ReturnHops(PLAN)
/** stage 1's retention budget (bytes), changed by the tests */
const stage1Budget = { bytes: 1 << 30 }
const retention1 = new StageRetention(() => stage1Budget.bytes)
const prefix0 = sessionChainCache(() => 1 << 30)

function plan (): Plan {
  return {
    kind: 'plan', id: PLAN, modelId: asModelId('stories260k-f32'), nLayers: 5, predictedMsPerToken: 1, ringRttMs: 1,
    stages: [{ peerId: asNodeId(a.peerId.toString()), name: 'a', start: 0, end: 3, computeMs: 0, memoryBytes: 0 }, { peerId: asNodeId(b.peerId.toString()), name: 'b', start: 3, end: 5, computeMs: 0, memoryBytes: 0 }]
  }
}

async function generate (text: string, reuse: boolean): Promise<{ text: string, tokens: number[] }> {
  const request: InferenceRequest = { id: asRequestId('req'), model: asModelId('stories260k-f32'), prompt: { kind: 'text', text }, maxTokens: 24, sampling: { temperature: 0 }, stop: [] }
  let out = ''
  const tokens: number[] = []
  for await (const e of generateAsFirstStage({
    request, plan: plan(), shard: s0, modelPath: MODEL, tokenizer, returnHops,
    dialStage1: async (open: OpenFrame, s: AbortSignal) => await ActivationChannel.dial(await a.dialProtocol(b.getMultiaddrs()[0]!, ACTIVATIONS_PROTOCOL, { signal: s }), open, { signal: s }),
    ...(reuse ? { prefix: prefix0 } : {}),
    signal: AbortSignal.timeout(30_000)
  })) if (e.type === 'token') { out += e.text; tokens.push(e.tokenId) }
  return { text: out, tokens }
}

before(async () => {
  [a, b] = await Promise.all([startNode(), startNode()])
  const opts = { modelPath: MODEL, threads: 1, flashAttention: false }
  ;[s0, s1, tokenizer] = await Promise.all([loadShard({ ...opts, range: { start: 0, end: 3 } }, {}), loadShard({ ...opts, range: { start: 3, end: 5 } }, {}), Tokenizer.load(MODEL)])
  await a.handle(ACTIVATIONS_PROTOCOL, createActivationsHandler(returnHops))
  runner = new StageRunner({
    planId: PLAN, stageIndex: 1, nStages: 2, shard: s1,
    dialNext: async (open, signal) => await ActivationChannel.dial(await b.dialProtocol(a.getMultiaddrs()[0]!, ACTIVATIONS_PROTOCOL, { signal }), open, { signal }),
    createSampler: async (open, signal) => await createStageSampler(open, MODEL, signal),
    retention: retention1,
    kvBytes: (cells) => sessionKvBytes(s1.metadata, cells, s1.range)
  })
  await b.handle(ACTIVATIONS_PROTOCOL, createActivationsHandler(runner))
})
after(async () => {
  runner.dispose()
  prefix0.clear()
  await Promise.all([a.stop(), b.stop(), s0.dispose(), s1.dispose(), tokenizer.dispose()])
})

describe('prefix reuse around a two-stage ring', () => {
  it('turn 2 reuses both stages\' KV and generates the greedy tokens of a cold run', async () => {
    const t1 = await generate(STORY, true)
    assert.deepEqual(t1, await generate(STORY, false))
    assert.equal(prefix0.size, 1)
    assert.equal(retention1.cache.size, 1, 'stage 1 retained the request it saw END for')
    const turn2 = `${STORY}${t1.text} Then they went home.`
    const warm = await generate(turn2, true)
    assert.equal(prefix0.stats.hits, 1)
    assert.equal(retention1.cache.stats.hits, 1)
    assert.ok(retention1.cache.stats.reusedTokens > 30, `stage 1 kept ${retention1.cache.stats.reusedTokens} positions`)
    assert.deepEqual(warm, await generate(turn2, false))
    assert.equal(runner.activeSessions, 0)
    assert.equal(returnHops.pending, 0)
  })

  it('a stage that evicted the retained KV answers PREFIX_MISSING; stage 0 falls back to a cold prefill with the same tokens', async () => {
    const text = `${STORY}The dog ran to the tree.`
    const t1 = await generate(text, true)
    // stage 1 now keeps nothing: it evicts what it retained
    stage1Budget.bytes = 0
    retention1.cache.trim()
    const turn2 = `${text}${t1.text} The sun was hot.`
    const before = { ...prefix0.stats }
    const warm = await generate(turn2, true)
    assert.equal(prefix0.stats.hits - before.hits, 0, 'the stage-0 hit was undone')
    assert.equal(prefix0.stats.misses - before.misses, 1)
    assert.ok(retention1.cache.stats.misses >= 1)
    assert.equal(retention1.cache.size, 0)
    assert.deepEqual(warm, await generate(turn2, false))
    assert.equal(runner.activeSessions, 0)
    assert.equal(returnHops.pending, 0)
    stage1Budget.bytes = 1 << 30
  })
})
