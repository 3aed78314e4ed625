import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decide, participants, plannerViewFor, readyPlansInView, stageOf } from '../../../src/node/pipeline/plan-agreement-core.js'
import { plan as computePlan } from '../../../src/planner/index.js'
import type { ModelCard, NoPlan, Plan } from '../../../src/planner/index.js'
import { applyAnnouncement, emptyView } from '../../../src/mesh/membership/view.js'
import type { ViewState } from '../../../src/mesh/membership/view.js'
import type { Announcement } from '../../../src/mesh/membership/announcement.js'
import { asModelId } from '../../../src/shared/ids.js'
import { makeAnnouncement } from '../mesh/fixtures.js'

const MB = 2 ** 20
const MODEL = 'story-5'
/** 5 layers of 1 MiB (+ 64 KiB KV); a 3 MiB budget holds at most 2 layers plus embeddings or output */
const card: ModelCard = {
  id: asModelId(MODEL), nLayers: 5, layerBytes: Array(5).fill(MB), embeddingBytes: MB / 4, outputBytes: MB / 4, kvBytesPerTokenPerLayer: 64, contextSize: 1024
}
const BUDGET = 3 * MB

interface SimNode { id: string, msPerLayer: number, budget: number, serving: Plan | undefined, proposal: Plan | NoPlan | undefined, held: Plan[], holdsModel: boolean }

function node (id: string, msPerLayer = 1, budget = BUDGET, holdsModel = true): SimNode {
  return { id, msPerLayer, budget, serving: undefined, proposal: undefined, held: [], holdsModel }
}

/** Each node's announcement: its budget, speed, proposal, the stages it holds (ready), links to every other node (2 ms). */
function announce (n: SimNode, all: SimNode[], seq: number): Announcement {
  return makeAnnouncement(n.id, {
    seq,
    name: n.id,
    capabilities: { memoryBudgetBytes: n.budget, freeMemoryBytes: 0, cpuCores: 2, backend: 'cpu', computeMsPerUnit: n.msPerLayer },
    models: n.holdsModel ? [{ id: MODEL, sizeBytes: 5 * MB }] : [],
    shards: n.held.map((p) => { const s = stageOf(p, n.id)!; return { model: MODEL, start: s.start, end: s.end, ready: true, planId: p.id } }),
    links: all.filter((o) => o !== n).map((o) => ({ peerId: o.id, rttMs: 2, rttClassMs: 2, bandwidthBytesPerSec: 0 })),
    pipeline: { model: MODEL, msPerLayer: n.msPerLayer, ...(n.proposal?.kind === 'plan' ? { plan: n.proposal } : {}) }
  })
}

/** The view every node holds after all announcements of this round arrived (in `order`). */
function viewOf (self: string, anns: Announcement[], order: number[]): ViewState {
  let v = emptyView(self)
  for (const i of order) v = applyAnnouncement(v, anns[i]!, 0).state
  return v
}

let seq = 0
/** One round: everyone announces, everyone decides; stages of wanted plans load at once, unwanted ones are dropped. */
function round (nodes: SimNode[]): void {
  seq++
  const anns = nodes.map((n) => announce(n, nodes, seq))
  for (const [k, n] of nodes.entries()) {
    const order = anns.map((_, i) => i).sort((x, y) => ((x * 7 + k) % 5) - ((y * 7 + k) % 5)) // every node applies in another order
    const d = decide({ view: viewOf(n.id, anns, order), card, serving: n.serving })
    n.serving = d.serving
    n.proposal = d.proposal
    n.held = [d.proposal, d.serving].filter((p): p is Plan => p?.kind === 'plan' && stageOf(p, n.id) !== undefined)
      .filter((p, i, a) => a.findIndex((x) => x.id === p.id) === i)
  }
}

function servingOf (n: SimNode, nodes: SimNode[]): Plan | undefined {
  return decide({ view: viewOf(n.id, nodes.map((x) => announce(x, nodes, seq + 1)), nodes.map((_, i) => i)), card, serving: n.serving }).serving
}

function proposalIds (nodes: SimNode[]): Set<string | undefined> {
  return new Set(nodes.map((n) => n.proposal?.kind === 'plan' ? n.proposal.id : undefined))
}

describe('plan agreement (pure core)', () => {
  it('three nodes that must split the model agree on one plan, which serves once every stage is ready', () => {
    const nodes = [node('12D3KooWc'), node('12D3KooWa'), node('12D3KooWb')]
    round(nodes)
    assert.equal(proposalIds(nodes).size, 1, 'same view → same plan id on every node')
    const p = nodes[0]!.proposal as Plan
    assert.equal(p.stages.length, 3)
    // stages load after the proposal; nothing serves until every stage announces its shard
    assert.equal(servingOf(nodes[0]!, nodes.map((n) => ({ ...n, held: n === nodes[0] ? n.held : [] }))), undefined)
    round(nodes)
    for (const n of nodes) assert.equal(servingOf(n, nodes)?.id, p.id)
    const d = decide({ view: viewOf('x', nodes.map((n) => announce(n, nodes, 99)), [0, 1, 2]), card, serving: undefined })
    assert.equal(d.serving?.id, p.id, 'an observer that holds nothing sees the same ready plan')
  })

  it('a newcomer learns the agreed plan from gossip, so hysteresis gives it the same plan id as everyone', () => {
    const nodes = [node('12D3KooWa'), node('12D3KooWb'), node('12D3KooWc')]
    round(nodes); round(nodes)
    const agreed = nodes[0]!.serving!
    // 8 % faster: a fresh plan would use it (and hashes a 4-node input), hysteresis keeps the agreed one
    const d = node('12D3KooWd', 0.92)
    const all = [...nodes, d]
    const fresh = computePlan(plannerViewFor(viewOf(d.id, all.map((n) => announce(n, all, 50)), [0, 1, 2, 3]), MODEL), card)
    assert.equal(fresh.kind, 'plan')
    assert.notEqual((fresh as Plan).id, agreed.id, 'without the agreed plan the newcomer would disagree')
    round(all)
    assert.deepEqual([...proposalIds(all)], [agreed.id])
    assert.equal(d.serving?.id, agreed.id)
  })

  it('a much faster newcomer changes the plan; the old plan serves until the new one is ready (make before break)', () => {
    const nodes = [node('12D3KooWa'), node('12D3KooWb'), node('12D3KooWc')]
    round(nodes); round(nodes)
    const old = nodes[0]!.serving!
    const fast = node('12D3KooWd', 0.2, 10 * MB)
    const all = [...nodes, fast]
    round(all)
    const next = [...proposalIds(all)]
    assert.equal(next.length, 1)
    assert.notEqual(next[0], old.id)
    // the proposal's stages have not announced readiness to everyone yet: the old plan still serves
    const anns = all.map((n) => announce(n, all, 70))
    const notYet = anns.map((a) => a.peerId === fast.id ? { ...a, shards: [] } : a)
    assert.equal(decide({ view: viewOf(nodes[0]!.id, notYet, [0, 1, 2, 3]), card, serving: nodes[0]!.serving }).serving?.id, old.id)
    round(all)
    for (const n of all) assert.equal(servingOf(n, all)?.id, next[0])
  })

  it('nodes that saw a newcomer at different moments still converge (no two plans kept by hysteresis)', () => {
    const nodes = [node('12D3KooWa'), node('12D3KooWb'), node('12D3KooWc')]
    round(nodes); round(nodes)
    const big = node('12D3KooWz', 0.5, 20 * MB)
    const all = [...nodes, big]
    // big and a decide before any link to big was measured (a single-stage plan needs none) …
    const early = all.map((n) => announce(n, all, 80)).map((a) => a.peerId === big.id ? { ...a, links: [] } : { ...a, links: a.links.filter((l) => l.peerId !== big.id) })
    for (const n of [big, all[0]!]) { const d = decide({ view: viewOf(n.id, early, [0, 1, 2, 3]), card, serving: n.serving }); n.proposal = d.proposal; n.serving = d.serving }
    // … b and c only once the links were measured (and before big loaded its range): the same assignment, another id
    const late = all.map((n) => announce(n, all, 81))
    for (const n of [all[1]!, all[2]!]) { const d = decide({ view: viewOf(n.id, late, [0, 1, 2, 3]), card, serving: n.serving }); n.proposal = d.proposal; n.serving = d.serving }
    big.held = [big.proposal as Plan]
    assert.equal(proposalIds(all).size, 2, 'the views differed: two ids for the same assignment')
    round(all); round(all)
    assert.equal(proposalIds(all).size, 1)
    const p = all[0]!.proposal as Plan
    assert.deepEqual(p.stages.map((s) => s.peerId), [big.id])
    for (const n of all) assert.equal(servingOf(n, all)?.id, p.id)
  })

  it('a stage that leaves invalidates the plan; the rest agree on a new one', () => {
    const all = [node('12D3KooWa'), node('12D3KooWb'), node('12D3KooWc'), node('12D3KooWd', 1.5)]
    round(all); round(all)
    const old = all[0]!.serving!
    assert.ok(!old.stages.some((s) => s.peerId === '12D3KooWd'), 'the slow node idles')
    const rest = all.filter((n) => n.id !== old.stages[1]!.peerId)
    round(rest); round(rest)
    const ids = [...proposalIds(rest)]
    assert.equal(ids.length, 1)
    assert.notEqual(ids[0], old.id)
    for (const n of rest) assert.equal(servingOf(n, rest)?.id, ids[0])
  })

  it('nodes with another flash-attention setting plan apart (their results would not be bit-exact together)', () => {
    const nodes = [node('12D3KooWa'), node('12D3KooWb'), node('12D3KooWc')]
    const anns = nodes.map((n) => announce(n, nodes, 1)).map((a) => a.peerId === '12D3KooWc' ? { ...a, pipeline: { ...a.pipeline!, flashAttention: false } } : a)
    const view = viewOf('12D3KooWa', anns, [0, 1, 2])
    assert.deepEqual(participants(view, MODEL).map((a) => a.peerId), ['12D3KooWa', '12D3KooWb'])
    assert.deepEqual(participants(view, MODEL, false).map((a) => a.peerId), ['12D3KooWc'])
    assert.equal(decide({ view, card, serving: undefined }).proposal.kind, 'none', 'two 3 MiB nodes cannot hold the model')
  })

  it('nodes that lack the file take part (they fetch their layers) only while some member holds it', () => {
    const nodes = [node('12D3KooWa'), node('12D3KooWb', 1, BUDGET, false), node('12D3KooWc', 1, BUDGET, false)]
    const view = viewOf('12D3KooWa', nodes.map((n) => announce(n, nodes, 1)), [0, 1, 2])
    assert.deepEqual(participants(view, MODEL).map((a) => a.peerId), ['12D3KooWa', '12D3KooWb', '12D3KooWc'])
    const pv = plannerViewFor(view, MODEL)
    assert.equal(pv.members.find((m) => m.peerId === '12D3KooWa')!.fetchBytesPerSec, undefined)
    assert.equal(typeof pv.members.find((m) => m.peerId === '12D3KooWb')!.fetchBytesPerSec, 'number')
    const noHolder = viewOf('12D3KooWb', nodes.slice(1).map((n) => announce(n, nodes.slice(1), 1)), [0, 1])
    assert.deepEqual(participants(noHolder, MODEL), [])
  })

  it('a GPU node plans with its measured device (budget, not free memory) and takes more layers; every node agrees', () => {
    const nodes = [node('12D3KooWa'), node('12D3KooWb')]
    const dev = { backend: 'cuda' as const, name: 'GPU', totalBytes: 8 * MB, freeBytes: MB, budgetBytes: 3 * MB, computeMsPerLayer: 0.1 }
    const anns = nodes.map((n) => announce(n, nodes, 1)).map((a) => a.peerId === '12D3KooWa'
      ? { ...a, devices: [{ ...dev, backend: 'vulkan' as const, computeMsPerLayer: 0 }, dev] }
      : a)
    const pv = plannerViewFor(viewOf('12D3KooWb', anns, [0, 1]), MODEL)
    assert.deepEqual(pv.members.map((m) => m.device), [{ budgetBytes: 3 * MB, computeMsPerLayer: 0.1 }, undefined])
    const [pa, pb] = [viewOf('12D3KooWa', anns, [0, 1]), viewOf('12D3KooWb', anns, [1, 0])].map((v) => decide({ view: v, card, serving: undefined }).proposal)
    assert.ok(pa?.kind === 'plan' && pb?.kind === 'plan', 'two 3 MiB hosts hold the model only with the device')
    assert.equal(pa.id, pb.id)
    const [ga, gb] = ['12D3KooWa', '12D3KooWb'].map((id) => pa.stages.find((s) => s.peerId === id)!)
    assert.ok(ga!.end - ga!.start > gb!.end - gb!.start, JSON.stringify(pa.stages))
    assert.equal(ga!.gpuLayers, 2)
  })

  it('only nodes that measured their speed take part; too little memory → a reason', () => {
    const nodes = [node('12D3KooWa'), node('12D3KooWb'), node('12D3KooWe', 0)]
    const view = viewOf('12D3KooWa', nodes.map((n) => announce(n, nodes, 1)), [0, 1, 2])
    assert.deepEqual(participants(view, MODEL).map((a) => a.peerId), ['12D3KooWa', '12D3KooWb'])
    const d = decide({ view, card, serving: undefined })
    assert.equal(d.proposal.kind, 'none')
    assert.equal(d.serving, undefined)
    assert.match(d.reason ?? '', /needs .* offer/)
    assert.deepEqual(readyPlansInView(view, MODEL), [])
  })
})
