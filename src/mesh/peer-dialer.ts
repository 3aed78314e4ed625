import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../shared/log.js'
import type { MeshLibp2p } from './create-libp2p.js'

export const REDIAL_INTERVAL_MS = 2000
export const DIAL_TIMEOUT_MS = 5000

/** A member learnt from gossip that we may dial: its id and announced addresses. */
export interface DialTargetHint { peerId: string, addresses: readonly string[] }

/**
 * Keeps connections up (libp2p v3 neither auto-dials discovered peers nor redials bootstrap peers):
 * - static `--peer` multiaddrs: dialled every REDIAL_INTERVAL_MS while not connected;
 * - members announced on gossip we are not connected to (so every link gets measured);
 * - peers found by mDNS, at once.
 */
export class PeerDialer {
  private timer: NodeJS.Timeout | undefined
  private readonly staticPeers: Array<{ addr: Multiaddr, peerId?: string }>
  private readonly inFlight = new Set<string>()
  private readonly onDiscovery = (e: CustomEvent<PeerInfo>): void => { this.dialPeer(e.detail.id, e.detail.multiaddrs) }

  constructor (
    private readonly libp2p: MeshLibp2p,
    peers: readonly string[],
    private readonly hints: () => DialTargetHint[],
    private readonly log: Logger
  ) {
    this.staticPeers = peers.map((p) => {
      const addr = multiaddr(p)
      return { addr, peerId: addr.getComponents().find((c) => c.name === 'p2p')?.value }
    })
  }

  start (): void {
    this.libp2p.addEventListener('peer:discovery', this.onDiscovery)
    this.timer = setInterval(() => { this.tick() }, REDIAL_INTERVAL_MS)
    this.timer.unref()
    this.tick()
  }

  stop (): void {
    clearInterval(this.timer)
    this.libp2p.removeEventListener('peer:discovery', this.onDiscovery)
  }

  private connected (peerId: string): boolean {
    return this.libp2p.getConnections().some((c) => c.remotePeer.toString() === peerId && c.status === 'open')
  }

  /** Dials what is missing now (also runs every REDIAL_INTERVAL_MS). */
  tick (): void {
    for (const sp of this.staticPeers) {
      if (sp.peerId !== undefined && this.connected(sp.peerId)) continue
      const key = sp.addr.toString()
      if (this.inFlight.has(key)) continue
      this.inFlight.add(key)
      this.libp2p.dial(sp.addr, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
        .then((conn) => { sp.peerId = conn.remotePeer.toString() })
        .catch((err: Error) => { this.log.debug({ addr: key, err: err.message }, 'static peer dial failed') })
        .finally(() => { this.inFlight.delete(key) })
    }
    const self = this.libp2p.peerId.toString()
    for (const h of this.hints()) {
      if (h.peerId === self || this.connected(h.peerId)) continue
      try {
        this.dialPeer(peerIdFromString(h.peerId), h.addresses.map((a) => multiaddr(a)))
      } catch (err) {
        this.log.debug({ peer: h.peerId, err: (err as Error).message }, 'bad member address')
      }
    }
  }

  private dialPeer (peerId: PeerId, addrs: Multiaddr[]): void {
    const id = peerId.toString()
    if (id === this.libp2p.peerId.toString() || this.inFlight.has(id) || this.connected(id)) return
    this.inFlight.add(id)
    void (async () => {
      if (addrs.length > 0) await this.libp2p.peerStore.merge(peerId, { multiaddrs: addrs })
      await this.libp2p.dial(peerId, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
    })()
      .catch((err: Error) => { this.log.debug({ peer: id, err: err.message }, 'member dial failed') })
      .finally(() => { this.inFlight.delete(id) })
  }
}
