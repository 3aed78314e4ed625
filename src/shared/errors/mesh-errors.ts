import { ExoError } from './exo-error.js'

/** A gossip message that fails validation (protocols/membership.md "Validation"). */
export class InvalidAnnouncementError extends ExoError {
  readonly code = 'MESH_INVALID_ANNOUNCEMENT'
  constructor (readonly reason: 'unsigned' | 'oversized' | 'malformed' | 'foreign', detail: string) {
    super(`${reason} membership message: ${detail}`)
  }
}

/** The persisted peer identity file exists but cannot be read as a libp2p private key. */
export class PeerIdentityError extends ExoError {
  readonly code = 'MESH_PEER_IDENTITY'
}

/** The libp2p node could not start (e.g. the p2p port is taken). */
export class MeshStartError extends ExoError {
  readonly code = 'MESH_START'
}

/**
 * A member dropped out of the view (silent past the liveness bound, unreachable): its connections are
 * closed with this error, and so fail the streams on them (protocols/membership.md "Healing").
 */
export class MemberLostError extends ExoError {
  readonly code = 'MESH_MEMBER_LOST'
}
