// The dashboard's pure browser modules (served as they are from src/api/dashboard/static/) run in Node too.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ClusterStateJson, MemberJson } from '../../../src/shared/cluster-state.js'

const staticDir = new URL('../../../src/api/dashboard/static/', import.meta.url)
// imported by URL: the page's modules are plain JS, not part of the TypeScript program
const sse = await import(new URL('sse.js', staticDir).href)
const view = await import(new URL('mesh-view.js', staticDir).href)

function member (peerId: string, over: Partial<MemberJson> = {}): MemberJson {
  return {
    peerId,
    name: `n-${peerId}`,
    state: 'alive',
    addresses: [],
    httpUrl: '',
    capabilities: { memoryBudgetBytes: 1e9, freeMemoryBytes: 5e8, cpuCores: 2, backend: 'cpu', computeMsPerUnit: 0 },
    models: [],
    shards: [],
    queueLength: 0,
    lastSeenMsAgo: 0,
    ...over
  }
}

function state (members: MemberJson[], over: Partial<ClusterStateJson> = {}): ClusterStateJson {
  const self = members[0]!
  return { self: { peerId: self.peerId, name: self.name, httpUrl: '', addresses: [] }, members, links: [], viewHash: 'h', ...over }
}

test('SSE parser: events split across chunks, CRLF, comments, multi-line data, [DONE]', () => {
  const p = sse.createSseParser()
  const got = [
    ...p.push('data: {"a":'),
    ...p.push('1}\r'),
    ...p.push('\n\r\n: keep-alive\n\nevent: x\ndata: l1\ndata:l2\n\n'),
    ...p.push('data: [DONE]')
  ]
  assert.deepEqual(got, [{ event: 'message', data: '{"a":1}' }, { event: 'x', data: 'l1\nl2' }])
  assert.deepEqual(p.end(), [{ event: 'message', data: '[DONE]' }])
})

test('readSse reads a byte stream cut in the middle of a UTF-8 character', async () => {
  const bytes = new TextEncoder().encode('data: héllo\n\ndata: 2\n\n')
  const body = new ReadableStream<Uint8Array>({
    start (c) { c.enqueue(bytes.slice(0, 8)); c.enqueue(bytes.slice(8)); c.close() }
  })
  const events = []
  for await (const ev of sse.readSse(body)) events.push(ev.data)
  assert.deepEqual(events, ['héllo', '2'])
})

test('token meter: decode rate excludes the wait for the first token', () => {
  const m = sse.createTokenMeter(1000)
  assert.equal(m.stats(1000).tokensPerSec, undefined)
  m.token(1500) // first token after 500 ms of prefill
  for (let i = 1; i <= 10; i++) m.token(1500 + i * 20) // then one every 20 ms
  const st = m.stats()
  assert.equal(st.tokens, 11)
  assert.equal(st.ttftMs, 500)
  assert.ok(Math.abs(st.tokensPerSec - 50) < 1e-9, String(st.tokensPerSec))
})

test('trackMembers: a node seen once and then missing from members is dead; suspect stays suspect', () => {
  const known = new Map()
  const s1 = state([member('a'), member('b', { lastSeenMsAgo: 300 }), member('c', { state: 'suspect' })])
  const first = view.trackMembers(known, s1, 10_000)
  assert.deepEqual(first.map((n: { status: string }) => n.status), ['alive', 'alive', 'suspect'])
  assert.equal(first[0].isSelf, true)
  const second = view.trackMembers(known, state([member('a'), member('c', { state: 'suspect' })]), 11_000)
  assert.deepEqual(second.map((n: { peerId: string, status: string }) => `${n.peerId}:${n.status}`), ['a:alive', 'c:suspect', 'b:dead'])
  assert.equal(second[2].lastSeenAt, 9_700)
  // it comes back: alive again
  const third = view.trackMembers(known, s1, 12_000)
  assert.deepEqual(third.map((n: { status: string }) => n.status), ['alive', 'alive', 'suspect'])
})

test('pairLinks: one edge per pair with both directions, none to absent nodes', () => {
  const links = [
    { from: 'b', to: 'a', rttMs: 2, bandwidthBytesPerSec: 0 },
    { from: 'a', to: 'b', rttMs: 1, bandwidthBytesPerSec: 5e8 },
    { from: 'a', to: 'z', rttMs: 9, bandwidthBytesPerSec: 0 }
  ]
  assert.deepEqual(view.pairLinks(links, new Set(['a', 'b'])), [{ a: 'a', b: 'b', rttMs: 2, rttBackMs: 1, bandwidthBytesPerSec: 5e8 }])
})

test('layerRangeOf prefers the plan stage over a reported shard; estimateUsedBytes is the shard share', () => {
  const m = member('a', { models: [{ id: 'm', sizeBytes: 1000 }], shards: [{ model: 'm', start: 0, end: 2, ready: true }] })
  const plan = { id: 'p', model: 'm', ready: false, predictedMsPerToken: 1, stages: [
    { peerId: 'a', name: 'A', start: 0, end: 3, ready: false, gpuLayers: 2, deviceBytes: 5 }, { peerId: 'b', name: 'B', start: 3, end: 5, ready: true }] }
  assert.deepEqual(view.layerRangeOf('a', state([m], { plan }), m), { start: 0, end: 3, ready: false, source: 'plan', gpuLayers: 2 })
  assert.deepEqual(view.layerRangeOf('b', state([m], { plan }), member('b')), { start: 3, end: 5, ready: true, source: 'plan', gpuLayers: 0 })
  assert.deepEqual(view.layerRangeOf('a', state([m]), m), { start: 0, end: 2, ready: true, source: 'shard', gpuLayers: 0 })
  assert.equal(view.layerRangeOf('b', state([m]), member('b')), undefined)
  assert.equal(view.estimateUsedBytes(m, state([m], { plan })), 400)
  assert.equal(view.estimateUsedBytes(m, state([m])), undefined)
})

test('GPU texts: each device with its memory; the topology box names the first and counts the rest', async () => {
  const format = await import(new URL('format.js', staticDir).href)
  const d = { backend: 'cuda', name: 'NVIDIA GeForce RTX 4090', totalBytes: 24e9, freeBytes: 20.5e9, budgetBytes: 20e9, computeMsPerLayer: 0.1 }
  assert.equal(format.deviceText(d), 'cuda NVIDIA GeForce RTX 4090 · 20.5 GB free of 24.0 GB')
  assert.equal(format.devicesShort([d]), 'GPU: NVIDIA GeFo… 24.0 GB')
  assert.equal(format.devicesShort([d, d]), 'GPU: NVIDIA GeFo… 24.0 GB +1')
  assert.equal(format.devicesShort([]), undefined)
  assert.equal(format.devicesShort(undefined), undefined)
})

test('layoutNodes keeps every node box inside the drawing', () => {
  for (const n of [1, 2, 3, 5, 8]) {
    const w = n > 2 ? 700 : 480
    const h = n > 2 ? 200 + n * 40 : 170
    const pts = view.layoutNodes(n, w, h)
    assert.equal(pts.length, n)
    for (const p of pts) {
      assert.ok(p.x - 88 >= 0 && p.x + 88 <= w, `n=${n} x=${p.x}`)
      assert.ok(p.y - 44 >= 0 && p.y + 44 <= h, `n=${n} y=${p.y}`)
    }
  }
})

test('model pulls: one line each, by state', async () => {
  const { downloadText } = await import(new URL('format.js', staticDir).href) as { downloadText: (d: unknown) => string }
  assert.equal(downloadText({ ref: 'hf.co/o/r:Q8_0', file: 'm-Q8_0.gguf', completed: 500_000, total: 2_000_000, state: 'downloading' }), 'pulling hf.co/o/r:Q8_0: m-Q8_0.gguf: 25% 500 KB / 2.0 MB')
  assert.equal(downloadText({ ref: 'o/r', completed: 0, total: 0, state: 'resolving' }), 'pulling o/r: resolving…')
  assert.equal(downloadText({ ref: 'o/r', file: 'a.gguf', completed: 1, total: 1, state: 'verifying' }), 'pulling o/r: a.gguf: verifying sha256')
  assert.equal(downloadText({ ref: 'o/r', id: 'a', completed: 1, total: 1, state: 'done' }), 'pulled o/r (a)')
  assert.equal(downloadText({ ref: 'o/r', completed: 0, total: 0, state: 'failed', error: 'HTTP 401' }), 'pull o/r failed: HTTP 401')
})
