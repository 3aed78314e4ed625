import type { ConnectionGater, PeerId } from '@libp2p/interface'

/**
 * Peers this node refuses for a cool-off after a gossip ban (protocols/membership.md "Peer scoring").
 * Pure: every call takes `now` (ms, the caller's monotonic clock). Bounded: at most `maxEntries` bans
 * (expired ones go first, then the one that ends soonest).
 */
export type BanReason = 'graylisted' | 'oversized-rpc'

export interface Ban { readonly reason: BanReason, readonly until: number }

export class PeerBans {
  private readonly bans = new Map<string, Ban>()

  constructor (readonly coolOffMs: number, private readonly maxEntries = 1024) {}

  /** Bans `peerId` until now + coolOffMs; true when it was not banned already (an existing ban is not extended). */
  ban (peerId: string, reason: BanReason, now: number): boolean {
    if (this.isBanned(peerId, now)) return false
    this.bans.set(peerId, { reason, until: now + this.coolOffMs })
    if (this.bans.size > this.maxEntries) this.prune(now)
    return true
  }

  isBanned (peerId: string, now: number): boolean {
    const b = this.bans.get(peerId)
    if (b === undefined) return false
    if (b.until > now) return true
    this.bans.delete(peerId)
    return false
  }

  /** Current bans with the ms left. */
  list (now: number): Array<{ peerId: string, reason: BanReason, remainingMs: number }> {
    this.prune(now)
    return [...this.bans].map(([peerId, b]) => ({ peerId, reason: b.reason, remainingMs: b.until - now }))
  }

  private prune (now: number): void {
    for (const [id, b] of this.bans) if (b.until <= now) this.bans.delete(id)
    while (this.bans.size > this.maxEntries) {
      let soonest: string | undefined
      let until = Infinity
      for (const [id, b] of this.bans) if (b.until < until) { until = b.until; soonest = id }
      if (soonest === undefined) break
      this.bans.delete(soonest)
    }
  }
}

/** Refuses banned peers in both directions: dials to them and their connections (right after Noise names them). */
export function bannedPeersGater (bans: PeerBans, now: () => number): ConnectionGater {
  const denied = (peerId: PeerId): boolean => bans.isBanned(peerId.toString(), now())
  return { denyDialPeer: denied, denyInboundEncryptedConnection: denied, denyOutboundEncryptedConnection: denied }
}
