import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../shared/log.js'
import { MeshStartError } from '../shared/errors/mesh-errors.js'
import type { MeshLibp2p } from './create-libp2p.js'
import type { BanReason, PeerBans } from './peer-bans.js'
import { scoreStanding } from './gossip-scoring.js'

/** The parts of @libp2p/gossipsub's GossipSub class beyond its public interface that the guard uses. */
interface GossipSubInternals {
  getScore: (peerId: string) => number
  handlePeerReadStreamError: (err: Error, peerId: PeerId) => void
}

function internalsOf (pubsub: unknown): GossipSubInternals {
  const p = pubsub as Partial<GossipSubInternals>
  if (typeof p.getScore !== 'function' || typeof p.handlePeerReadStreamError !== 'function') {
    throw new MeshStartError('the gossipsub implementation lacks getScore / handlePeerReadStreamError (pinned @libp2p/gossipsub 17.x expected)')
  }
  return p as GossipSubInternals
}

export interface PeerGuardStats {
  /** peers banned, by reason */
  banned: Record<BanReason, number>
  /** peers this node pruned from the membership mesh for a negative score */
  pruned: number
}

/**
 * Enforces protocols/membership.md "Peer scoring" at the edge: after every gossipsub heartbeat, a connected
 * peer whose score is under the graylist threshold is banned (PeerBans: refused for the cool-off) and its
 * connections are closed; so is a peer that sends a gossipsub frame over MAX_RPC_BYTES.
 */
export class PeerGuard {
  readonly stats: PeerGuardStats = { banned: { graylisted: 0, 'oversized-rpc': 0 }, pruned: 0 }
  private internals: GossipSubInternals | undefined
  private originalReadError: GossipSubInternals['handlePeerReadStreamError'] | undefined
  private readonly now: () => number

  constructor (private readonly libp2p: MeshLibp2p, private readonly bans: PeerBans, private readonly log: Logger, now?: () => number) {
    this.now = now ?? (() => performance.now())
  }

  private readonly onHeartbeat = (): void => {
    const internals = this.internals
    if (internals === undefined) return
    const seen = new Set<string>()
    for (const conn of this.libp2p.getConnections()) {
      const id = conn.remotePeer.toString()
      if (seen.has(id)) continue
      seen.add(id)
      const score = internals.getScore(id)
      if (scoreStanding(score) === 'graylisted') this.ban(conn.remotePeer, 'graylisted', score)
    }
  }

  private readonly onPrune = (e: CustomEvent<{ peerId: string, topic: string, direction: string }>): void => {
    const score = this.internals?.getScore(e.detail.peerId) ?? 0
    if (e.detail.direction !== 'outbound' || score >= 0) return
    this.stats.pruned++
    this.log.info({ peer: e.detail.peerId, topic: e.detail.topic, score }, 'peer pruned from the gossip mesh (negative score)')
  }

  start (): void {
    const pubsub = this.libp2p.services.pubsub
    const internals = internalsOf(pubsub)
    this.internals = internals
    const original = internals.handlePeerReadStreamError
    this.originalReadError = original
    internals.handlePeerReadStreamError = (err: Error, peerId: PeerId): void => {
      original.call(pubsub, err, peerId)
      if (err?.name === 'InvalidDataLengthError') this.ban(peerId, 'oversized-rpc', internals.getScore(peerId.toString()))
    }
    pubsub.addEventListener('gossipsub:heartbeat', this.onHeartbeat)
    pubsub.addEventListener('gossipsub:prune', this.onPrune)
  }

  stop (): void {
    const pubsub = this.libp2p.services.pubsub
    pubsub.removeEventListener('gossipsub:heartbeat', this.onHeartbeat)
    pubsub.removeEventListener('gossipsub:prune', this.onPrune)
    if (this.internals !== undefined && this.originalReadError !== undefined) this.internals.handlePeerReadStreamError = this.originalReadError
    this.internals = undefined
  }

  /** Whether `peerId` is banned now (the membership validator ignores what it signed). */
  isBanned (peerId: string): boolean { return this.bans.isBanned(peerId, this.now()) }

  /** Bans the peer for the cool-off and closes its connections. */
  ban (peerId: PeerId | string, reason: BanReason, score: number): void {
    const id = peerId.toString()
    if (id === this.libp2p.peerId.toString() || !this.bans.ban(id, reason, this.now())) return
    this.stats.banned[reason]++
    this.log.warn({ peer: id, reason, score, coolOffMs: this.bans.coolOffMs }, 'peer banned: connections closed, redials refused for the cool-off')
    const pid = typeof peerId === 'string' ? peerIdFromString(peerId) : peerId
    this.libp2p.hangUp(pid, { signal: AbortSignal.timeout(5000) }).catch((err: Error) => {
      this.log.debug({ peer: id, err: err.message }, 'hang up of a banned peer failed')
    })
  }
}
