/** Numbers of protocols/membership.md. Change them there first. */
export const MEMBERSHIP_TOPIC = '/exo-p2p/membership/1.0.0'
export const MESSAGE_VERSION = 1
export const MAX_MESSAGE_BYTES = 65_536
export const ANNOUNCE_INTERVAL_MS = 2000
export const ANNOUNCE_JITTER_MS = 100
export const SUSPECT_AFTER_MS = 3000
export const REMOVE_AFTER_MS = 5000
export const EXPIRE_CHECK_INTERVAL_MS = 250
export const TOMBSTONE_MS = 10_000
/** A member whose last connection closed is redialled for this long before it is removed (fast path). */
export const UNREACHABLE_DIAL_TIMEOUT_MS = 1000
/** EWMA weight of a new RTT sample. */
export const RTT_EWMA_ALPHA = 0.3
export const MAX_LIST_ITEMS = 256
/** devices per announcement (1.3) */
export const MAX_DEVICES = 16
/** Announcements a node sends: bursts of ≤ 20, ≤ 2 per second sustained (protocols/membership.md "Rate limits"). */
export const SEND_RATE_BURST = 20
export const SEND_RATE_PER_SECOND = 2
/** Announcements accepted per signer: twice the send limit, so an honest sender never reaches it. */
export const RECEIVE_RATE_BURST = 40
export const RECEIVE_RATE_PER_SECOND = 4
