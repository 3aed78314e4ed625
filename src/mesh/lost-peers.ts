/** A member learnt from gossip that we may dial: its id and announced addresses. */
export interface DialTargetHint { peerId: string, addresses: readonly string[] }

/** How long a member that dropped out of the view is still redialled (protocols/membership.md "Healing"). */
export const LOST_PEER_REDIAL_MS = 10 * 60_000

/**
 * Pure bookkeeping of members that dropped out of the view without coming back (silent: a partition,
 * a dead link or host; or gone), so the dialer keeps redialling their last announced addresses for
 * `keepMs` and the mesh heals by itself when the network does. Fed the current members at each dialer
 * round; no clock of its own.
 */
export class LostPeers {
  private known = new Map<string, readonly string[]>()
  private readonly lost = new Map<string, { addresses: readonly string[], since: number }>()

  constructor (private readonly keepMs = LOST_PEER_REDIAL_MS) {}

  /**
   * The members now (`present`, self excluded) at time `now` (ms). Returns the ids that dropped out
   * since the previous call; a member seen again is no longer lost; the lost are forgotten after `keepMs`.
   */
  update (present: readonly DialTargetHint[], now: number): string[] {
    const current = new Map(present.map((h) => [h.peerId, h.addresses]))
    const dropped: string[] = []
    for (const [id, addresses] of this.known) {
      if (!current.has(id)) { this.lost.set(id, { addresses, since: now }); dropped.push(id) }
    }
    for (const id of current.keys()) this.lost.delete(id)
    for (const [id, l] of this.lost) if (now - l.since > this.keepMs) this.lost.delete(id)
    this.known = current
    return dropped
  }

  /** Stops redialling `peerId` (this node refuses it: a ban); it is lost again only if it rejoins and drops out. */
  forget (peerId: string): void { this.lost.delete(peerId) }

  /** The lost members to redial, with their last announced addresses. */
  targets (): DialTargetHint[] {
    return [...this.lost].map(([peerId, l]) => ({ peerId, addresses: l.addresses }))
  }

  get size (): number { return this.lost.size }
}
