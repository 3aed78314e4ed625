import assert from 'node:assert/strict'
import { test } from 'node:test'
import { StageRunner } from '../../../src/node/pipeline/stage-runner.js'
import type { HopChannel, StageRunnerOptions } from '../../../src/node/pipeline/stage-runner.js'
import type { HiddenFrame, OpenFrame, PayloadFrame } from '../../../src/protocols/activations/index.js'
import type { ForwardInput, ForwardOptions, ForwardOutput, ModelMetadata, ShardSession } from '../../../src/engine/types.js'
import { AbortedError } from '../../../src/shared/errors/exo-error.js'
import { ActivationErrorCode, ActivationStageError } from '../../../src/shared/errors/protocol-errors.js'
import { asPlanId, asRequestId } from '../../../src/shared/ids.js'
import type { PlanId, RequestId } from '../../../src/shared/ids.js'
import { DType } from '../../../src/shared/tensor.js'

const N_EMBD = 4
const N_VOCAB = 10
const PLAN = asPlanId('aa'.repeat(32))
const rid = asRequestId('r1')

/** In-memory hop: frames from the test (upstream) or to the test (downstream), ERROR/abort as in the protocol. */
class MemoryHop implements HopChannel {
  readonly sent: PayloadFrame[] = []
  private inbox: Array<PayloadFrame | Error | undefined> = []
  private wake: (() => void) | undefined
  aborted: Error | undefined
  closed = false
  constructor (readonly open: OpenFrame) {}
  push (f: PayloadFrame | Error | undefined): void { this.inbox.push(f); this.wake?.() }
  async next (o: { signal?: AbortSignal } = {}): Promise<PayloadFrame | undefined> {
    for (;;) {
      if (this.inbox.length > 0) {
        const f = this.inbox.shift()
        if (f instanceof Error) throw f
        return f
      }
      if (o.signal?.aborted === true) throw new AbortedError('read aborted')
      await new Promise<void>((resolve) => {
        this.wake = resolve
        o.signal?.addEventListener('abort', () => { resolve() }, { once: true })
      })
    }
  }
  async send (f: PayloadFrame): Promise<void> {
    if (this.aborted !== undefined) throw this.aborted
    this.sent.push(f)
  }
  async close (): Promise<void> { this.closed = true }
  abort (err: Error): void { this.aborted ??= err; this.push(err) }
}

/** Fake session: hidden + 1 per element; last stage: logits whose argmax is (Σ hidden) mod nVocab. */
class FakeSession implements ShardSession {
  position = 0
  disposed = false
  constructor (readonly contextSize: number, private readonly last: boolean) {}
  async forward (input: ForwardInput, _o?: ForwardOptions): Promise<ForwardOutput> {
    assert.equal(input.kind, 'hidden')
    if (input.kind !== 'hidden') throw new Error('unreachable')
    this.position += input.nTokens
    if (!this.last) return { kind: 'hidden', hidden: input.hidden.map((x) => x + 1), nTokens: input.nTokens }
    const row = input.hidden.subarray((input.nTokens - 1) * N_EMBD)
    const logits = new Float32Array(N_VOCAB)
    logits[Math.abs(Math.round(row.reduce((a, b) => a + b, 0))) % N_VOCAB] = 1
    return { kind: 'logits', logits, nRows: 1 }
  }
  truncate (p: number): void { this.position = p }
  dispose (): void { this.disposed = true }
}

function setup (o: { stageIndex: number, nStages: number, last: boolean, maxSessions?: StageRunnerOptions['maxSessions'], memory?: Pick<StageRunnerOptions, 'kvBytes' | 'kvCapacityBytes'> }): { runner: StageRunner, sessions: FakeSession[], hops: MemoryHop[] } {
  const sessions: FakeSession[] = []
  const hops: MemoryHop[] = []
  const opts: StageRunnerOptions = {
    planId: PLAN,
    stageIndex: o.stageIndex,
    nStages: o.nStages,
    maxSessions: o.maxSessions,
    ...o.memory,
    shard: {
      isLast: o.last,
      metadata: { nEmbd: N_EMBD, contextLength: 256 } as ModelMetadata,
      createSession: ({ contextSize }) => { const s = new FakeSession(contextSize, o.last); sessions.push(s); return s }
    },
    dialNext: async (open) => { const h = new MemoryHop(open); hops.push(h); return h },
    createSampler: () => ({ sample: (logits) => logits.indexOf(Math.max(...logits)) })
  }
  return { runner: new StageRunner(opts), sessions, hops }
}

const open = (toStage: number, planId: PlanId = PLAN, requestId: RequestId = rid, contextSize = 64): OpenFrame => ({ type: 'open', requestId, planId, toStage, contextSize })
const frame = (type: 'prefill' | 'decode', start: number, count: number, last = false, value = 1): HiddenFrame =>
  ({ type, requestId: rid, planId: PLAN, start, count, last, dtype: DType.F32, nEmbd: N_EMBD, hidden: new Float32Array(count * N_EMBD).fill(value) })

test('a middle stage forwards transformed hidden states with their positions, then END; the session is freed', async () => {
  const { runner, sessions, hops } = setup({ stageIndex: 1, nStages: 3, last: false })
  const up = new MemoryHop(open(1))
  const served = runner.serve(up.open, up, { signal: new AbortController().signal })
  up.push(frame('prefill', 0, 3)); up.push(frame('prefill', 3, 2, true)); up.push(frame('decode', 5, 1))
  up.push({ type: 'end', requestId: rid, planId: PLAN })
  await served
  const down = hops[0]!
  assert.equal(down.open.toStage, 2)
  assert.deepEqual(down.sent.map((f) => f.type === 'end' || f.type === 'result' ? f.type : `${f.type}@${f.start}+${f.count}${f.type === 'prefill' && f.last ? '!' : ''}`), ['prefill@0+3', 'prefill@3+2!', 'decode@5+1', 'end'])
  const first = down.sent[0]!
  assert.ok(first.type === 'prefill' && first.hidden.every((x) => x === 2))
  assert.ok(down.closed)
  assert.equal(sessions[0]!.disposed, true)
  assert.equal(runner.activeSessions, 0)
})

test('the last stage returns a sampled token to stage 0 after the last prefill chunk and each decode', async () => {
  const { runner, hops } = setup({ stageIndex: 2, nStages: 3, last: true })
  const up = new MemoryHop(open(2))
  const served = runner.serve(up.open, up, { signal: new AbortController().signal })
  up.push(frame('prefill', 0, 4, false, 1)); up.push(frame('prefill', 4, 2, true, 1)); up.push(frame('decode', 6, 1, false, 2))
  up.push({ type: 'end', requestId: rid, planId: PLAN })
  await served
  const back = hops[0]!
  assert.equal(back.open.toStage, 0, 'the last hop goes back to stage 0')
  assert.deepEqual(back.sent, [
    { type: 'result', requestId: rid, planId: PLAN, position: 6, tokenId: 4 }, // Σ of a row of 1s = 4
    { type: 'result', requestId: rid, planId: PLAN, position: 7, tokenId: 8 },
    { type: 'end', requestId: rid, planId: PLAN }
  ])
})

test('refusals: other plan, other stage, duplicate request, busy, context too large', async () => {
  const { runner } = setup({ stageIndex: 1, nStages: 2, last: true, maxSessions: 1 })
  const code = async (o: OpenFrame): Promise<string> => {
    try { await runner.serve(o, new MemoryHop(o), { signal: new AbortController().signal }); return 'served' } catch (e) { return (e as ActivationStageError).code }
  }
  assert.equal(await code(open(1, asPlanId('bb'.repeat(32)))), 'ACTIVATIONS_PLAN_MISMATCH')
  assert.equal(await code(open(2)), 'ACTIVATIONS_STAGE_MISMATCH')
  assert.equal(await code(open(1, PLAN, rid, 100_000)), 'ACTIVATIONS_CONTEXT_FULL')
  const up = new MemoryHop(open(1))
  const served = runner.serve(up.open, up, { signal: new AbortController().signal })
  assert.equal(await code(open(1)), 'ACTIVATIONS_DUPLICATE_REQUEST')
  assert.equal(await code(open(1, PLAN, asRequestId('r2'))), 'ACTIVATIONS_BUSY')
  up.push({ type: 'end', requestId: rid, planId: PLAN })
  await served
  assert.equal(runner.activeSessions, 0)
})

test('the session limit follows the memory: by count (re-read at every OPEN) and by KV bytes; one session alone always runs', async () => {
  let limit = 1
  let capacity = 1000
  // 10 bytes per cell: an OPEN of 64 cells wants 640 bytes
  const { runner } = setup({ stageIndex: 1, nStages: 2, last: true, maxSessions: () => limit, memory: { kvBytes: (cells) => 10 * cells, kvCapacityBytes: () => capacity } })
  const code = async (o: OpenFrame): Promise<string> => {
    try { await runner.serve(o, new MemoryHop(o), { signal: new AbortController().signal }); return 'served' } catch (e) { return (e as ActivationStageError).code }
  }
  const up = new MemoryHop(open(1, PLAN, rid, 200))
  const served = runner.serve(up.open, up, { signal: new AbortController().signal })
  assert.equal(runner.activeKvBytes, 2000, 'alone it runs beyond the capacity')
  assert.equal(await code(open(1, PLAN, asRequestId('r2'))), 'ACTIVATIONS_BUSY', 'count')
  limit = 4
  assert.equal(await code(open(1, PLAN, asRequestId('r2'))), 'ACTIVATIONS_BUSY', 'bytes')
  capacity = 2640
  const up2 = new MemoryHop(open(1, PLAN, asRequestId('r2')))
  const served2 = runner.serve(up2.open, up2, { signal: new AbortController().signal })
  assert.equal(runner.activeSessions, 2)
  assert.equal(await code(open(1, PLAN, asRequestId('r3'))), 'ACTIVATIONS_BUSY', 'full')
  for (const [h, id] of [[up, rid], [up2, asRequestId('r2')]] as const) h.push({ type: 'end', requestId: id, planId: PLAN })
  await Promise.all([served, served2])
  assert.equal(runner.activeKvBytes, 0)
})

test('upstream abort frees the session and aborts the downstream hop', async () => {
  const { runner, sessions, hops } = setup({ stageIndex: 1, nStages: 3, last: false })
  const up = new MemoryHop(open(1))
  const ac = new AbortController()
  const served = runner.serve(up.open, up, { signal: ac.signal })
  up.push(frame('prefill', 0, 2, true))
  while (hops[0]?.sent.length !== 1) await new Promise((resolve) => setImmediate(resolve))
  ac.abort(new Error('client went away'))
  await assert.rejects(served)
  assert.ok(hops[0]!.aborted !== undefined)
  assert.equal(sessions[0]!.disposed, true)
  assert.equal(runner.activeSessions, 0)
})

test('an ERROR from downstream is relayed upstream with its code; the session is freed', async () => {
  const { runner, sessions, hops } = setup({ stageIndex: 1, nStages: 3, last: false })
  const up = new MemoryHop(open(1))
  const served = runner.serve(up.open, up, { signal: new AbortController().signal })
  while (hops[0] === undefined) await new Promise((resolve) => setImmediate(resolve))
  hops[0].push(new ActivationStageError(ActivationErrorCode.PlanMismatch, 'plan aa… is not held', true))
  await assert.rejects(served, (e) => e instanceof ActivationStageError && !e.remote && e.wireCode === ActivationErrorCode.PlanMismatch && /stage 2/.test(e.message))
  assert.equal(sessions[0]!.disposed, true)
})

test('bad position, wrong hidden size and a closed upstream without END fail the request and free it', async () => {
  const cases: Array<[PayloadFrame | undefined, string]> = [[frame('decode', 3, 1), 'ACTIVATIONS_BAD_POSITION'], [{ ...frame('prefill', 0, 1), nEmbd: 5, hidden: new Float32Array(5) }, 'ACTIVATIONS_SHAPE_MISMATCH'], [undefined, 'ABORTED']]
  for (const [f, expected] of cases) {
    const { runner, sessions, hops } = setup({ stageIndex: 1, nStages: 3, last: false })
    const up = new MemoryHop(open(1))
    const served = runner.serve(up.open, up, { signal: new AbortController().signal })
    up.push(f)
    await assert.rejects(served, (e) => (e as { code: string }).code === expected)
    assert.equal(sessions[0]!.disposed, true)
    assert.ok(hops[0]!.aborted !== undefined, 'downstream aborted')
  }
})

test('dispose aborts every hop in flight and refuses new ones', async () => {
  const { runner, sessions } = setup({ stageIndex: 1, nStages: 2, last: true })
  const up = new MemoryHop(open(1))
  const served = runner.serve(up.open, up, { signal: new AbortController().signal })
  while (sessions.length === 0) await new Promise((resolve) => setImmediate(resolve))
  runner.dispose()
  await assert.rejects(served)
  assert.equal(sessions[0]!.disposed, true)
  await assert.rejects(runner.serve(open(1, PLAN, asRequestId('r9')), new MemoryHop(open(1)), { signal: new AbortController().signal }), (e) => (e as ActivationStageError).code === 'ACTIVATIONS_NOT_READY')
})
