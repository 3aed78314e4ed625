import type { PeerScoreParams, PeerScoreThresholds, TopicScoreParams } from '@libp2p/gossipsub/score'
import { MAX_MESSAGE_BYTES, MEMBERSHIP_TOPIC } from './membership/constants.js'

/**
 * gossipsub peer scoring and limits of protocols/membership.md "Peer scoring". Every number here is
 * documented (with why) there; change it there first.
 */

/** gossipsub heartbeat (mesh maintenance, PRUNE of negative scores, our graylist check) and score decay tick. */
export const GOSSIP_HEARTBEAT_MS = 1000
export const SCORE_DECAY_INTERVAL_MS = 1000

/** P4: score −5 × n², n = invalid deliveries, × 0.9 per second (half-life ≈ 6.6 s). */
export const INVALID_MESSAGE_WEIGHT = -5
export const INVALID_MESSAGE_DECAY = 0.9
/** P7 (GRAFT during backoff, broken IWANT promises): −10 × (n − 3)² beyond 3 events, × 0.9 per second. */
export const BEHAVIOUR_PENALTY_WEIGHT = -10
export const BEHAVIOUR_PENALTY_THRESHOLD = 3
export const BEHAVIOUR_PENALTY_DECAY = 0.9

export const SCORE_THRESHOLDS: PeerScoreThresholds = Object.freeze({
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 100,
  opportunisticGraftThreshold: 5
})

/** A graylisted peer is disconnected and refused (both directions) for this long. */
export const BAN_COOL_OFF_MS = 60_000
/** Counters of a disconnected peer are kept (not decayed) this long: a banned peer comes back at its ban's end with a clean score. */
export const RETAIN_SCORE_MS = BAN_COOL_OFF_MS
/** Largest gossipsub RPC frame read from a peer; a longer one ends that peer's gossip stream and bans it. */
export const MAX_RPC_BYTES = 4 * MAX_MESSAGE_BYTES

/** Score parameters of the membership topic: only penalties count (P1–P3 off, see the spec). */
export function membershipTopicScoreParams (): TopicScoreParams {
  return {
    topicWeight: 1,
    timeInMeshWeight: 0,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 1,
    firstMessageDeliveriesWeight: 0,
    firstMessageDeliveriesDecay: 0.5,
    firstMessageDeliveriesCap: 1,
    meshMessageDeliveriesWeight: 0,
    meshMessageDeliveriesDecay: 0.5,
    meshMessageDeliveriesCap: 1,
    meshMessageDeliveriesThreshold: 1,
    meshMessageDeliveriesWindow: 10,
    meshMessageDeliveriesActivation: 5000,
    meshFailurePenaltyWeight: 0,
    meshFailurePenaltyDecay: 0.5,
    invalidMessageDeliveriesWeight: INVALID_MESSAGE_WEIGHT,
    invalidMessageDeliveriesDecay: INVALID_MESSAGE_DECAY
  }
}

export function membershipScoreParams (): Partial<PeerScoreParams> {
  return {
    topics: { [MEMBERSHIP_TOPIC]: membershipTopicScoreParams() },
    topicScoreCap: 10,
    appSpecificScore: () => 0,
    appSpecificWeight: 0,
    IPColocationFactorWeight: 0,
    IPColocationFactorThreshold: 1,
    behaviourPenaltyWeight: BEHAVIOUR_PENALTY_WEIGHT,
    behaviourPenaltyThreshold: BEHAVIOUR_PENALTY_THRESHOLD,
    behaviourPenaltyDecay: BEHAVIOUR_PENALTY_DECAY,
    decayInterval: SCORE_DECAY_INTERVAL_MS,
    decayToZero: 0.1,
    retainScore: RETAIN_SCORE_MS
  }
}

/**
 * What a score means for a peer, most severe last: `ok` (≥ 0); `pruned` (< 0: left out of the mesh at the
 * next heartbeat, still receives our own announcements by flood publishing); `no-gossip` (< gossipThreshold:
 * no IHAVE/IWANT exchange); `no-publish` (< publishThreshold: we send it nothing); `graylisted`
 * (< graylistThreshold: gossipsub drops everything it sends; we close its connections and ban it).
 */
export type ScoreStanding = 'ok' | 'pruned' | 'no-gossip' | 'no-publish' | 'graylisted'

export function scoreStanding (score: number, t: PeerScoreThresholds = SCORE_THRESHOLDS): ScoreStanding {
  if (Number.isNaN(score) || score < t.graylistThreshold) return 'graylisted'
  if (score < t.publishThreshold) return 'no-publish'
  if (score < t.gossipThreshold) return 'no-gossip'
  if (score < 0) return 'pruned'
  return 'ok'
}
