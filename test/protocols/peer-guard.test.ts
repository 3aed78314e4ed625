// PeerGuard on real loopback libp2p nodes (in process): a gossipsub frame over MAX_RPC_BYTES bans its
// sender, closes its connection and refuses it for the cool-off (protocols/membership.md "Peer scoring").
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMeshLibp2p } from '../../src/mesh/create-libp2p.js'
import type { MeshLibp2p } from '../../src/mesh/create-libp2p.js'
import { PeerBans } from '../../src/mesh/peer-bans.js'
import { PeerGuard } from '../../src/mesh/peer-guard.js'
import { BAN_COOL_OFF_MS, MAX_RPC_BYTES } from '../../src/mesh/gossip-scoring.js'
import { MEMBERSHIP_TOPIC } from '../../src/mesh/membership/constants.js'
import { createLogger } from '../../src/shared/log.js'
import { GossipFlooder } from '../integration/helpers/gossip-flooder.js'
import { waitFor } from '../integration/helpers/mesh-node-process.js'

let node: MeshLibp2p
let guard: PeerGuard
let flooder: GossipFlooder
const bans = new PeerBans(BAN_COOL_OFF_MS)

before(async () => {
  node = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), host: '127.0.0.1', port: 0, clusterKeyHex: undefined, mdns: false, bans })
  guard = new PeerGuard(node, bans, createLogger('test:peer-guard'))
  guard.start()
  await node.start()
  node.services.pubsub.subscribe(MEMBERSHIP_TOPIC)
  flooder = await GossipFlooder.start(undefined, [{ p2pAddr: node.getMultiaddrs()[0]!.toString(), peerId: node.peerId.toString() }])
})

after(async () => {
  guard.stop()
  await Promise.all([flooder.stop(), node.stop()])
})

test('a gossipsub frame over MAX_RPC_BYTES bans the sender and closes its connection; redials are refused', async () => {
  await flooder.publish(new Uint8Array(MAX_RPC_BYTES + 1024))
  await waitFor('the sender to be banned and cut off', async () => guard.stats.banned['oversized-rpc'] === 1 && flooder.connectedTo().size === 0 ? true : undefined, 5000, 20)
  assert.equal(guard.isBanned(flooder.peerId), true)
  const conn = await flooder.libp2p.dial(multiaddr(node.getMultiaddrs()[0]!.toString()), { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
  await waitFor('the redial to be refused', async () => conn === undefined || conn.status !== 'open' ? true : undefined, 3000, 20)
  await assert.rejects(node.dial(flooder.libp2p.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) }), /gater|denied/i)
  assert.equal(node.getConnections().length, 0)
})
