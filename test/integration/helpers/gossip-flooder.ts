import '../../../src/shared/polyfills.js'
import { multiaddr } from '@multiformats/multiaddr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMeshLibp2p } from '../../../src/mesh/create-libp2p.js'
import type { MeshLibp2p } from '../../../src/mesh/create-libp2p.js'
import { MEMBERSHIP_TOPIC } from '../../../src/mesh/membership/constants.js'
import { encodeMembershipMessage } from '../../../src/mesh/membership/announcement.js'
import { readClusterKeyFile } from '../../../src/config/cluster-key-file.js'
import { makeAnnouncement } from '../../unit/mesh/fixtures.js'
import type { MeshNodeProcess } from './mesh-node-process.js'
import { waitFor } from './mesh-node-process.js'

/**
 * A misbehaving cluster member for integration tests: an in-test libp2p node built with the project's
 * createMeshLibp2p and a VALID cluster key, connected to `targets`, that publishes whatever it is told on
 * the membership topic (no MembershipService, so no rate limit or validation on its side).
 */
export class GossipFlooder {
  /** honest peers that sent this node a PRUNE */
  readonly prunedBy = new Set<string>()
  private seq = 0
  private readonly epoch = Date.now()

  private constructor (readonly libp2p: MeshLibp2p) {
    libp2p.services.pubsub.addEventListener('gossipsub:prune', (e) => {
      if (e.detail.direction === 'inbound') this.prunedBy.add(e.detail.peerId)
    })
  }

  get peerId (): string { return this.libp2p.peerId.toString() }

  static async start (clusterKeyFile: string | undefined, targets: Array<Pick<MeshNodeProcess, 'p2pAddr' | 'peerId'>>): Promise<GossipFlooder> {
    const clusterKeyHex = clusterKeyFile !== undefined ? readClusterKeyFile(clusterKeyFile) : undefined
    const libp2p = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), host: '127.0.0.1', port: 0, clusterKeyHex, mdns: false })
    await libp2p.start()
    const f = new GossipFlooder(libp2p)
    libp2p.services.pubsub.subscribe(MEMBERSHIP_TOPIC)
    await Promise.all(targets.map(async (t) => await libp2p.dial(multiaddr(t.p2pAddr), { signal: AbortSignal.timeout(5000) })))
    await waitFor('every target to be a subscriber', async () => {
      const subs = new Set(libp2p.services.pubsub.getSubscribers(MEMBERSHIP_TOPIC).map((p) => p.toString()))
      return targets.every((t) => subs.has(t.peerId)) ? true : undefined
    }, 5000, 20)
    return f
  }

  /** Peers this node has an open connection to. */
  connectedTo (): Set<string> {
    return new Set(this.libp2p.getConnections().filter((c) => c.status === 'open').map((c) => c.remotePeer.toString()))
  }

  /** Publishes `data` as it is. */
  async publish (data: Uint8Array): Promise<void> { await this.libp2p.services.pubsub.publish(MEMBERSHIP_TOPIC, data) }

  /** A valid announcement of itself (a well-formed member, until it misbehaves). */
  async announce (): Promise<void> {
    const ann = makeAnnouncement(this.peerId, { name: 'flooder', epoch: this.epoch, seq: ++this.seq, addresses: this.libp2p.getMultiaddrs().map((a) => a.toString()) })
    await this.libp2p.services.pubsub.publish(MEMBERSHIP_TOPIC, encodeMembershipMessage(ann))
  }

  /**
   * Floods: first `burst` valid announcements back to back (twice the receive limit's burst), then
   * round-robin malformed JSON, announcements that speak for `victim` (forged peerId), 70 KB ones (over
   * 64 KiB, under the RPC frame limit) and more valid ones, one every `intervalMs`, until `done()` or
   * `timeoutMs`. Returns how many of each it published.
   */
  async flood (victim: string, done: () => boolean, timeoutMs: number, burst = 80, intervalMs = 5): Promise<Record<string, number>> {
    const enc = (x: unknown): Uint8Array => new TextEncoder().encode(typeof x === 'string' ? x : JSON.stringify(x))
    const kinds: Record<string, () => Uint8Array> = {
      'too-frequent': () => encodeMembershipMessage(makeAnnouncement(this.peerId, { name: 'flooder', epoch: this.epoch, seq: ++this.seq })),
      malformed: () => enc(`{"v":1,"kind":"announce","peerId":"${this.peerId}",`),
      forged: () => enc(makeAnnouncement(victim, { name: 'forged', epoch: Date.now() + 1e6, seq: ++this.seq })),
      oversized: () => enc(makeAnnouncement(this.peerId, { name: 'x'.repeat(70_000), epoch: this.epoch, seq: ++this.seq }))
    }
    const sent: Record<string, number> = Object.fromEntries(Object.keys(kinds).map((k) => [k, 0]))
    const deadline = Date.now() + timeoutMs
    for (let i = 0; !done() && Date.now() < deadline; i++) {
      const kind = i < burst ? 'too-frequent' : Object.keys(kinds)[i % 4]!
      try {
        await this.libp2p.services.pubsub.publish(MEMBERSHIP_TOPIC, kinds[kind]!())
        sent[kind]!++
      } catch { /* nobody left to publish to */ }
      if (i >= burst) await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
    return sent
  }

  async stop (): Promise<void> { await this.libp2p.stop() }
}
