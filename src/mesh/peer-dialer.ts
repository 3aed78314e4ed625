import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../shared/log.js'
import { MemberLostError } from '../shared/errors/mesh-errors.js'
import type { MeshLibp2p } from './create-libp2p.js'
import { LostPeers } from './lost-peers.js'
import type { DialTargetHint } from './lost-peers.js'

export type { DialTargetHint } from './lost-peers.js'

export const REDIAL_INTERVAL_MS = 1000
export const DIAL_TIMEOUT_MS = 5000
/**
 * A dial to a lost member that has no TCP connection after this long is dropped, so every round sends a
 * fresh SYN: one stuck in SYN/ARP retransmission backoff from the partition would reach a healed link
 * seconds late. Once TCP is up, the handshake gets DIAL_TIMEOUT_MS.
 */
export const LOST_CONNECT_TIMEOUT_MS = 900
/** libp2p's errors when this node's connection gater refuses a peer (src/mesh/peer-bans.ts) */
const REFUSED_BY_GATER = new Set(['DialDeniedError', 'ConnectionInterceptedError'])

/**
 * Keeps connections up (libp2p v3 neither auto-dials discovered peers nor redials bootstrap peers):
 * - static `--peer` multiaddrs: dialled every REDIAL_INTERVAL_MS while not connected;
 * - members announced on gossip we are not connected to (so every link gets measured);
 * - peers found by mDNS, at once;
 * - members that dropped out of the view (protocols/membership.md "Healing"): their connections are
 *   closed (a member silent for 5 s sits behind a dead link, and TCP's retransmission backoff would
 *   keep a dead connection stalled for seconds after the link returns) and they are redialled every
 *   round for LOST_PEER_REDIAL_MS at their last announced addresses, so a healed partition reconnects
 *   within a round.
 */
export class PeerDialer {
  private timer: NodeJS.Timeout | undefined
  private readonly staticPeers: Array<{ addr: Multiaddr, peerId?: string }>
  private readonly inFlight = new Set<string>()
  private readonly lost = new LostPeers()
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
    const members = this.hints().filter((h) => h.peerId !== self)
    for (const id of this.lost.update(members, performance.now())) this.dropConnections(id)
    for (const [h, connectMs] of [...members.map((m) => [m, undefined] as const), ...this.lost.targets().map((m) => [m, LOST_CONNECT_TIMEOUT_MS] as const)]) {
      if (this.connected(h.peerId)) continue
      try {
        this.dialPeer(peerIdFromString(h.peerId), h.addresses.map((a) => multiaddr(a)), connectMs)
      } catch (err) {
        this.log.debug({ peer: h.peerId, err: (err as Error).message }, 'bad member address')
      }
    }
  }

  /** A member dropped out of the view: its connections, if any still look open, are dead. */
  private dropConnections (id: string): void {
    const conns = this.libp2p.getConnections(peerIdFromString(id))
    this.log.info({ peer: id, connections: conns.length }, 'member dropped out of the view: closing its connections, redialling it')
    for (const c of conns) c.abort(new MemberLostError(`member ${id} dropped out of the view: its connection is dead`))
  }

  /** Dials a peer (one dial per peer in flight); `connectMs`: give up unless TCP connects that fast. */
  private dialPeer (peerId: PeerId, addrs: Multiaddr[], connectMs?: number): void {
    const id = peerId.toString()
    if (id === this.libp2p.peerId.toString() || this.inFlight.has(id) || this.connected(id)) return
    this.inFlight.add(id)
    const noTcp = new AbortController()
    // the upgrader's first progress event (Noise starts) means the TCP connection is up
    const timer = connectMs === undefined ? undefined : setTimeout(() => { noTcp.abort(new Error(`no TCP connection within ${connectMs} ms`)) }, connectMs)
    const onProgress = (e: { type: string }): void => { if (e.type.startsWith('upgrader:')) clearTimeout(timer) }
    void (async () => {
      if (addrs.length > 0) await this.libp2p.peerStore.merge(peerId, { multiaddrs: addrs })
      await this.libp2p.dial(peerId, { signal: AbortSignal.any([noTcp.signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)]), onProgress })
    })()
      .catch((err: Error) => {
        // our own connection gater refuses it (a gossip ban): a lost member that was banned is not redialled
        if (REFUSED_BY_GATER.has(err.name)) this.lost.forget(id)
        this.log.debug({ peer: id, err: err.message }, 'member dial failed')
      })
      .finally(() => { clearTimeout(timer); this.inFlight.delete(id) })
  }
}
