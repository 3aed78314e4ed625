import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../../shared/log.js'
import { InvalidAnnouncementError } from '../../shared/errors/mesh-errors.js'
import { decodeMembershipMessage, encodeMembershipMessage } from './announcement.js'
import type { Announcement, LinkMeasurement, MembershipMessage } from './announcement.js'
import { applyAnnouncement, applyMessage, applyUnreachable, emptyView, expire } from './view.js'
import type { ViewState } from './view.js'
import { canonicalView, viewHash } from './canonical-view.js'
import {
  ANNOUNCE_INTERVAL_MS, ANNOUNCE_JITTER_MS, EXPIRE_CHECK_INTERVAL_MS, MEMBERSHIP_TOPIC, MESSAGE_VERSION, RECEIVE_RATE_BURST,
  RECEIVE_RATE_PER_SECOND, SEND_RATE_BURST, SEND_RATE_PER_SECOND, UNREACHABLE_DIAL_TIMEOUT_MS
} from './constants.js'
import { RateLimiter } from './rate-limiter.js'
import { gossipVerdict } from './gossip-verdict.js'
import type { DecodeRejectReason } from './gossip-verdict.js'
import type { MeshLibp2p } from '../create-libp2p.js'

/** What the node tells the mesh about itself at each announcement (everything but ids and links). */
export type LocalInfo = Pick<Announcement, 'name' | 'httpUrl' | 'capabilities' | 'models' | 'shards' | 'queueLength' | 'pipeline' | 'partials' | 'devices'>

export type RejectReason = DecodeRejectReason | 'too-frequent' | 'banned-signer'
/** dropped without charging the relay (protocols/membership.md "Validation") */
export type IgnoreReason = 'relayed-too-frequent' | 'banned-signer'

export interface MembershipStats {
  /** messages on the topic that reached validation */
  received: number
  receivedBytes: number
  rejected: Record<RejectReason, number>
  ignored: Record<IgnoreReason, number>
  published: number
  publishedBytes: number
}

export interface MembershipInit {
  libp2p: MeshLibp2p
  /** called when a member joins (the dialer connects to it at once) */
  onJoin?: (peerId: string) => void
  localInfo: () => LocalInfo
  links: () => LinkMeasurement[]
  log: Logger
  /** peers banned by the PeerGuard: what they signed is dropped */
  isBanned?: (peerId: string) => boolean
  /** monotonic ms; defaults to performance.now */
  now?: () => number
}

const MAX_ADDRESSES = 16

/**
 * Gossips this node's announcement every ~2 s, validates and applies everyone else's into the pure
 * view (view.ts), expires silent members, and announces `leave` on stop (protocols/membership.md).
 */
export class MembershipService {
  private state: ViewState
  private readonly epoch = Date.now()
  private seq = 0
  private announceTimer: NodeJS.Timeout | undefined
  private expireTimer: NodeJS.Timeout | undefined
  private soonTimer: NodeJS.Timeout | undefined
  private started = false
  private cachedHash: { state: ViewState, hash: string } | undefined
  readonly stats: MembershipStats = {
    received: 0, receivedBytes: 0, published: 0, publishedBytes: 0,
    rejected: { unsigned: 0, oversized: 0, malformed: 0, foreign: 0, 'too-frequent': 0, 'banned-signer': 0 },
    ignored: { 'relayed-too-frequent': 0, 'banned-signer': 0 }
  }

  /** per-signer budget of received announcements, and this node's own sending budget */
  private readonly receiveLimiter = new RateLimiter({ burst: RECEIVE_RATE_BURST, perSecond: RECEIVE_RATE_PER_SECOND })
  private readonly sendLimiter = new RateLimiter({ burst: SEND_RATE_BURST, perSecond: SEND_RATE_PER_SECOND })

  private readonly now: () => number
  private readonly selfId: string

  constructor (private readonly init: MembershipInit) {
    this.now = init.now ?? (() => performance.now())
    this.selfId = init.libp2p.peerId.toString()
    this.state = emptyView(this.selfId)
  }

  private readonly validate = (source: PeerId, msg: Message): TopicValidatorResult => {
    this.stats.received++
    this.stats.receivedBytes += msg.data.byteLength
    const signer = msg.type === 'signed' ? msg.from.toString() : undefined
    let detail = ''
    const now = this.now()
    const { verdict, reason } = gossipVerdict({
      signer,
      source: source.toString(),
      signerBanned: (id) => this.init.isBanned?.(id) ?? false,
      takeToken: (id) => this.receiveLimiter.take(id, now),
      decode: () => {
        try {
          decodeMembershipMessage({ data: msg.data, from: signer })
          return undefined
        } catch (err) {
          if (!(err instanceof InvalidAnnouncementError)) throw err
          detail = err.message
          return err.reason
        }
      }
    })
    if (verdict === 'accept') return TopicValidatorResult.Accept
    if (verdict === 'ignore') {
      this.stats.ignored[reason as IgnoreReason]++
      return TopicValidatorResult.Ignore
    }
    const r = reason as RejectReason
    // a flood is logged once per 100 rejections of a reason, not per message
    if (this.stats.rejected[r]++ % 100 === 0) {
      this.init.log.warn({ reason: r, from: signer, relayedBy: source.toString(), detail, count: this.stats.rejected[r] }, 'rejected membership message')
    }
    return TopicValidatorResult.Reject
  }

  private readonly onMessage = (e: CustomEvent<Message>): void => {
    const msg = e.detail
    if (msg.topic !== MEMBERSHIP_TOPIC || msg.type !== 'signed') return
    let decoded: MembershipMessage
    try {
      decoded = decodeMembershipMessage({ data: msg.data, from: msg.from.toString() })
    } catch { return } // already counted and logged by the validator
    const before = this.state.members.get(decoded.peerId)
    const { state, outcome } = applyMessage(this.state, decoded, this.now())
    this.state = state
    if (outcome === 'joined' && decoded.kind === 'announce') {
      this.init.log.info({ peer: decoded.peerId, name: decoded.name }, 'member joined')
      this.init.onJoin?.(decoded.peerId)
      this.announceSoon() // let the newcomer hear from us without waiting a full interval
    } else if (outcome === 'left') {
      this.init.log.info({ peer: decoded.peerId, name: before?.announcement.name }, 'member left')
    }
  }

  /** Fast path (protocols/membership.md): the last connection to a member closed; redial, drop it if that fails. */
  private readonly onDisconnect = (e: CustomEvent<PeerId>): void => {
    const id = e.detail.toString()
    const entry = this.state.members.get(id)
    if (!this.started || id === this.selfId || entry === undefined) return
    void this.init.libp2p.dial(e.detail, { signal: AbortSignal.timeout(UNREACHABLE_DIAL_TIMEOUT_MS) }).then(() => {}, (err: unknown) => {
      try {
        // still the same announcement: nothing was heard from it meanwhile
        if (!this.started || this.state.members.get(id)?.announcement !== entry.announcement) return
        const { state, outcome } = applyUnreachable(this.state, id, this.now())
        this.state = state
        if (outcome === 'left') this.init.log.info({ peer: id, name: entry.announcement.name, err: (err as Error).message }, 'member unreachable (connection lost, redial failed)')
      } catch (failure) {
        // an event callback must not end the process; the timers remove the member anyway
        this.init.log.error({ err: failure, peer: id }, 'unreachable-member check failed')
      }
    })
  }

  private readonly onSubscriptionChange = (e: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (e.detail.subscriptions.some((s) => s.topic === MEMBERSHIP_TOPIC && s.subscribe)) this.announceSoon()
  }

  start (): void {
    if (this.started) return
    this.started = true
    const pubsub = this.init.libp2p.services.pubsub
    pubsub.topicValidators.set(MEMBERSHIP_TOPIC, this.validate)
    pubsub.addEventListener('message', this.onMessage)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.subscribe(MEMBERSHIP_TOPIC)
    this.init.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.announce()
    this.expireTimer = setInterval(() => { this.expireNow() }, EXPIRE_CHECK_INTERVAL_MS)
    this.expireTimer.unref()
  }

  /** Publishes `leave` (so peers drop us at once) and stops; the caller then stops libp2p. */
  async stop (options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!this.started) return
    this.started = false
    clearTimeout(this.announceTimer)
    clearTimeout(this.soonTimer)
    clearInterval(this.expireTimer)
    const pubsub = this.init.libp2p.services.pubsub
    try {
      await this.publish({ v: MESSAGE_VERSION, kind: 'leave', peerId: this.selfId, epoch: this.epoch, seq: ++this.seq }, options.signal)
    } catch (err) {
      this.init.log.warn({ err: (err as Error).message }, 'could not publish leave')
    }
    this.init.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.unsubscribe(MEMBERSHIP_TOPIC)
    pubsub.topicValidators.delete(MEMBERSHIP_TOPIC)
  }

  /** The current view (immutable). */
  view (): ViewState { return this.state }

  viewHash (): string {
    if (this.cachedHash?.state !== this.state) this.cachedHash = { state: this.state, hash: viewHash(canonicalView(this.state)) }
    return this.cachedHash.hash
  }

  /** ms on the membership clock (what `receivedAt` is measured in). */
  clock (): number { return this.now() }

  private expireNow (): void {
    const { state, removed } = expire(this.state, this.now())
    for (const id of removed) this.init.log.info({ peer: id, name: this.state.members.get(id)?.announcement.name }, 'member expired (silent)')
    this.state = state
  }

  /** Announces within ~50 ms (coalesced): a new member, subscriber or link measurement. */
  announceSoon (): void {
    if (!this.started || this.soonTimer !== undefined) return
    this.soonTimer = setTimeout(() => { this.soonTimer = undefined; this.announce() }, 50)
  }

  private announce (): void {
    if (!this.started) return
    clearTimeout(this.announceTimer)
    // this node's own rate limit (protocols/membership.md "Rate limits"): wait for a token
    const wait = this.sendLimiter.waitMs(this.selfId, this.now())
    if (wait > 0) {
      this.init.log.debug({ waitMs: wait }, 'announcement delayed by the send rate limit')
      this.announceTimer = setTimeout(() => { this.announce() }, wait)
      this.announceTimer.unref()
      return
    }
    this.sendLimiter.take(this.selfId, this.now())
    // the next round is scheduled first, so a failing round never stops the announcements
    const delay = ANNOUNCE_INTERVAL_MS + (Math.random() * 2 - 1) * ANNOUNCE_JITTER_MS
    this.announceTimer = setTimeout(() => { this.announce() }, delay)
    this.announceTimer.unref()
    let ann: Announcement
    try {
      ann = this.buildAnnouncement()
      this.state = applyAnnouncement(this.state, ann, this.now()).state
    } catch (err) {
      /** a local-info hook failed: a timer callback must not throw (it would end the process); try next round */
      this.init.log.error({ err: (err as Error).message }, 'could not build the announcement')
      return
    }
    this.publish(ann).catch((err: Error) => { this.init.log.warn({ err: err.message }, 'announce failed') })
  }

  private buildAnnouncement (): Announcement {
    const addresses = this.init.libp2p.getMultiaddrs().map((a) => a.toString()).filter((a) => a.length <= 256).slice(0, MAX_ADDRESSES)
    return {
      v: MESSAGE_VERSION,
      kind: 'announce',
      peerId: this.selfId,
      epoch: this.epoch,
      seq: ++this.seq,
      ...this.init.localInfo(),
      addresses,
      links: this.init.links().filter((l) => l.peerId !== this.selfId)
    }
  }

  private async publish (msg: MembershipMessage, signal?: AbortSignal): Promise<void> {
    const data = encodeMembershipMessage(msg)
    const publishing = this.init.libp2p.services.pubsub.publish(MEMBERSHIP_TOPIC, data)
    if (signal !== undefined) {
      await Promise.race([publishing, new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      })])
    } else await publishing
    this.stats.published++
    this.stats.publishedBytes += data.byteLength
  }
}
