import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LostPeers } from '../../../src/mesh/lost-peers.js'

const a = { peerId: 'A', addresses: ['/ip4/10.0.0.1/tcp/4001/p2p/A'] }
const b = { peerId: 'B', addresses: ['/ip4/10.0.0.2/tcp/4001/p2p/B'] }

test('a member that drops out of the view is reported once and redialled at its last addresses until it is back', () => {
  const lost = new LostPeers(60_000)
  assert.deepEqual(lost.update([a, b], 0), [])
  assert.deepEqual(lost.targets(), [])
  // b goes silent (a partition): reported once, then a redial target at its last announced addresses
  assert.deepEqual(lost.update([a], 1000), ['B'])
  assert.deepEqual(lost.update([a], 2000), [])
  assert.deepEqual(lost.targets(), [b])
  // it announces again (the network healed): no longer lost
  assert.deepEqual(lost.update([a, { ...b, addresses: ['/ip4/10.0.0.9/tcp/4001/p2p/B'] }], 3000), [])
  assert.equal(lost.size, 0)
})

test('lost members are forgotten after keepMs; one never seen is never lost', () => {
  const lost = new LostPeers(10_000)
  lost.update([a, b], 0)
  lost.update([], 1000)
  assert.deepEqual(lost.targets().map((t) => t.peerId).sort(), ['A', 'B'])
  assert.equal(lost.update([], 11_000).length, 0)
  assert.equal(lost.size, 2, 'still within keepMs at 10 s after the loss')
  lost.update([], 11_001)
  assert.equal(lost.size, 0)
  // a member lost twice restarts its clock
  lost.update([a], 12_000)
  assert.deepEqual(lost.update([], 13_000), ['A'])
  assert.deepEqual(lost.update([], 22_000), [])
  assert.equal(lost.size, 1)
})

test('a lost member this node refuses (a ban) is forgotten and not redialled', () => {
  const lost = new LostPeers(60_000)
  lost.update([a, b], 0)
  lost.update([a], 1000)
  lost.forget('B')
  assert.deepEqual(lost.targets(), [])
  assert.deepEqual(lost.update([a], 2000), [], 'not reported again while it stays out')
})
