import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { buildClusterState } from '../../../src/node/cluster-state-json.js'
import { Registry } from 'prom-client'
import { registerMeshMetrics } from '../../../src/node/mesh-metrics.js'
import { formatPeersTable } from '../../../src/cli/peers-table.js'
import { applyAnnouncement, emptyView } from '../../../src/mesh/membership/view.js'
import { canonicalView, viewHash } from '../../../src/mesh/membership/canonical-view.js'
import { makeAnnouncement } from '../mesh/fixtures.js'

const link = (peerId: string, rttMs: number): { peerId: string, rttMs: number, rttClassMs: number, bandwidthBytesPerSec: number } =>
  ({ peerId, rttMs, rttClassMs: 1, bandwidthBytesPerSec: 1e6 })

function sample (): ReturnType<typeof buildClusterState> {
  let view = emptyView('12D3KooWself')
  view = applyAnnouncement(view, makeAnnouncement('12D3KooWself', { name: 'me', links: [link('12D3KooWpeer', 9)] }), 1000).state
  view = applyAnnouncement(view, makeAnnouncement('12D3KooWpeer', { name: 'other', links: [link('12D3KooWself', 1.2), link('12D3KooWgone', 3)], models: [{ id: 'stories', sizeBytes: 1 }] }), 1000).state
  return buildClusterState({
    view,
    viewHash: viewHash(canonicalView(view)),
    now: 4500,
    self: { peerId: '12D3KooWself', name: 'me', httpUrl: 'http://h:1', addresses: [] },
    ownLinks: [link('12D3KooWpeer', 0.8)]
  })
}

describe('GET /cluster/state body', () => {
  it('lists members sorted, with liveness, last seen and RTT from this node', () => {
    const s = sample()
    assert.deepEqual(s.members.map((m) => m.peerId), ['12D3KooWpeer', '12D3KooWself'])
    const peer = s.members[0]
    assert.equal(peer?.state, 'suspect') // 3500 ms silent > 3000
    assert.equal(peer?.lastSeenMsAgo, 3500)
    assert.equal(peer?.rttMs, 0.8, 'own fresh measurement, not the announced one')
    assert.equal(s.members[1]?.rttMs, undefined)
    assert.equal(s.members[1]?.lastSeenMsAgo, 0)
  })

  it('links come from announcements (own links fresh) and only between members', () => {
    const s = sample()
    assert.deepEqual(s.links.map((l) => [l.from, l.to, l.rttMs]), [['12D3KooWpeer', '12D3KooWself', 1.2], ['12D3KooWself', '12D3KooWpeer', 0.8]])
  })

  it('metrics expose peers, per-link RTT and gossip counters', async () => {
    const registry = new Registry()
    const stats = { received: 7, receivedBytes: 70, published: 3, publishedBytes: 30, rejected: { unsigned: 0, oversized: 1, malformed: 2, foreign: 0, 'too-frequent': 4, 'banned-signer': 0 }, ignored: { 'relayed-too-frequent': 0, 'banned-signer': 1 } }
    const guard = { banned: { graylisted: 1, 'oversized-rpc': 0 }, pruned: 2 }
    registerMeshMetrics(registry, () => ({ state: sample(), stats, connections: 1, guard }))
    const text = await registry.metrics()
    assert.match(text, /^exo_p2p_peers 1$/m)
    assert.match(text, /^exo_p2p_members\{state="suspect"\} 1$/m)
    assert.match(text, /^exo_p2p_link_rtt_seconds\{peer="12D3KooWpeer",name="other"\} 0.0008$/m)
    assert.match(text, /^# TYPE exo_p2p_gossip_messages_received_total counter$/m)
    assert.match(text, /^exo_p2p_gossip_messages_received_total 7$/m)
    assert.match(text, /^exo_p2p_gossip_messages_rejected_total\{reason="malformed"\} 2$/m)
    assert.match(text, /^# TYPE exo_p2p_gossip_messages_rejected_total counter$/m)
    assert.match(text, /^exo_p2p_gossip_messages_rejected_total\{reason="too-frequent"\} 4$/m)
    assert.match(text, /^exo_p2p_gossip_messages_ignored_total\{reason="banned-signer"\} 1$/m)
    assert.match(text, /^exo_p2p_gossip_peers_banned_total\{reason="graylisted"\} 1$/m)
    assert.match(text, /^exo_p2p_gossip_peers_pruned_total 2$/m)
    stats.received = 9 // read again at the next scrape; a counter never goes back
    assert.match(await registry.metrics(), /^exo_p2p_gossip_messages_received_total 9$/m)
  })

  it('members show their GPUs and memory (the peers table too); plan stages their offloaded layers', () => {
    const gpu = { backend: 'cuda' as const, name: 'NVIDIA H200', totalBytes: 140 * 2 ** 30, freeBytes: 100.5 * 2 ** 30, budgetBytes: 139 * 2 ** 30, computeMsPerLayer: 0.05 }
    let view = emptyView('12D3KooWself')
    view = applyAnnouncement(view, makeAnnouncement('12D3KooWself', { name: 'me', devices: [gpu] }), 1000).state
    view = applyAnnouncement(view, makeAnnouncement('12D3KooWpeer', { name: 'other', devices: [] }), 1000).state
    const plan = { id: 'f'.repeat(64), model: 'm', ready: true, predictedMsPerToken: 3, stages: [{ peerId: '12D3KooWself', name: 'me', start: 0, end: 30, ready: true, gpuLayers: 24, deviceBytes: 5e9 }, { peerId: '12D3KooWpeer', name: 'other', start: 30, end: 32, ready: true }] }
    const s = buildClusterState({ view, viewHash: 'h', now: 1000, self: { peerId: '12D3KooWself', name: 'me', httpUrl: '', addresses: [] }, ownLinks: [], plan })
    assert.deepEqual(s.members.map((m) => m.devices), [undefined, [gpu]])
    const text = formatPeersTable(s)
    assert.match(text.split('\n')[0] ?? '', /BACKEND\s+GPUS free\/total/)
    assert.match(text.split('\n').find((l) => l.startsWith('*me')) ?? '', /cpu\s+cuda NVIDIA H200 100\.5G\/140\.0G/)
    assert.match(text, /me\[0,30\)\(24 on GPU\) → other\[30,32\)/)
  })

  it('the peers table shows one row per member with state, RTT and models', () => {
    const lines = formatPeersTable(sample()).split('\n')
    assert.match(lines[0] ?? '', /^NAME\s+ID\s+STATE/)
    const other = lines.find((l) => l.startsWith(' other'))
    assert.ok(other !== undefined)
    assert.match(other, /suspect/)
    assert.match(other, /0\.80ms/)
    assert.match(other, /stories/)
    assert.match(other, /3\.5s ago/)
    assert.ok(lines.some((l) => l.startsWith('*me')))
  })
})
