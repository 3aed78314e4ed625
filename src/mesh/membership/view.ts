import { REMOVE_AFTER_MS, SUSPECT_AFTER_MS, TOMBSTONE_MS } from './constants.js'
import type { Announcement, LeaveMessage, MembershipMessage } from './announcement.js'

/**
 * The pure membership state machine (protocols/membership.md "Liveness and the view").
 * No clock inside: every transition takes `now` (ms, the caller's monotonic clock). States are immutable.
 */
export interface MemberEntry {
  readonly announcement: Announcement
  /** `now` when the announcement was applied */
  readonly receivedAt: number
}

export interface Tombstone { readonly epoch: number, readonly seq: number, readonly until: number }

export interface ViewState {
  readonly selfId: string
  readonly members: ReadonlyMap<string, MemberEntry>
  readonly tombstones: ReadonlyMap<string, Tombstone>
}

export type MemberLiveness = 'alive' | 'suspect'

export type ApplyOutcome = 'joined' | 'updated' | 'left' | 'stale' | 'unknown'

export function emptyView (selfId: string): ViewState {
  return { selfId, members: new Map(), tombstones: new Map() }
}

function isNewer (a: { epoch: number, seq: number }, b: { epoch: number, seq: number }): boolean {
  return a.epoch > b.epoch || (a.epoch === b.epoch && a.seq > b.seq)
}

export function applyAnnouncement (state: ViewState, ann: Announcement, now: number): { state: ViewState, outcome: ApplyOutcome } {
  const current = state.members.get(ann.peerId)
  if (current !== undefined && !isNewer(ann, current.announcement)) return { state, outcome: 'stale' }
  const tomb = state.tombstones.get(ann.peerId)
  if (tomb !== undefined && !isNewer(ann, tomb)) return { state, outcome: 'stale' }
  const members = new Map(state.members)
  members.set(ann.peerId, { announcement: ann, receivedAt: now })
  let tombstones = state.tombstones
  if (tomb !== undefined) { const t = new Map(tombstones); t.delete(ann.peerId); tombstones = t }
  return { state: { ...state, members, tombstones }, outcome: current === undefined ? 'joined' : 'updated' }
}

export function applyLeave (state: ViewState, leave: LeaveMessage, now: number): { state: ViewState, outcome: ApplyOutcome } {
  if (leave.peerId === state.selfId) return { state, outcome: 'stale' }
  const current = state.members.get(leave.peerId)
  if (current !== undefined && isNewer(current.announcement, leave)) return { state, outcome: 'stale' }
  const tombstones = new Map(state.tombstones)
  tombstones.set(leave.peerId, { epoch: leave.epoch, seq: leave.seq, until: now + TOMBSTONE_MS })
  if (current === undefined) return { state: { ...state, tombstones }, outcome: 'unknown' }
  const members = new Map(state.members)
  members.delete(leave.peerId)
  return { state: { ...state, members, tombstones }, outcome: 'left' }
}

/**
 * Lost connection and failed redial (protocols/membership.md "Fast path"): removes the member as if it
 * had left with the (epoch, seq) of its last announcement, so only a newer announcement restores it.
 */
export function applyUnreachable (state: ViewState, peerId: string, now: number): { state: ViewState, outcome: ApplyOutcome } {
  const current = state.members.get(peerId)
  if (peerId === state.selfId || current === undefined) return { state, outcome: 'unknown' }
  const { epoch, seq } = current.announcement
  return applyLeave(state, { v: current.announcement.v, kind: 'leave', peerId, epoch, seq }, now)
}

export function applyMessage (state: ViewState, msg: MembershipMessage, now: number): { state: ViewState, outcome: ApplyOutcome } {
  return msg.kind === 'announce' ? applyAnnouncement(state, msg, now) : applyLeave(state, msg, now)
}

/** alive / suspect from the age of the last announcement (self is always alive). */
export function livenessOf (state: ViewState, peerId: string, now: number): MemberLiveness {
  if (peerId === state.selfId) return 'alive'
  const entry = state.members.get(peerId)
  if (entry === undefined) return 'suspect'
  return now - entry.receivedAt > SUSPECT_AFTER_MS ? 'suspect' : 'alive'
}

/** Removes members silent for more than REMOVE_AFTER_MS (never self) and old tombstones. */
export function expire (state: ViewState, now: number): { state: ViewState, removed: string[] } {
  const removed: string[] = []
  for (const [id, entry] of state.members) {
    if (id !== state.selfId && now - entry.receivedAt > REMOVE_AFTER_MS) removed.push(id)
  }
  let tombstonesChanged = false
  for (const t of state.tombstones.values()) if (t.until <= now) tombstonesChanged = true
  if (removed.length === 0 && !tombstonesChanged) return { state, removed }
  const members = new Map(state.members)
  for (const id of removed) members.delete(id)
  const tombstones = new Map([...state.tombstones].filter(([, t]) => t.until > now))
  return { state: { ...state, members, tombstones }, removed }
}
