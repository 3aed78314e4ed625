import type { InvalidAnnouncementError } from '../../shared/errors/mesh-errors.js'

/**
 * What the membership topic validator answers for one message (protocols/membership.md "Validation" and
 * "Peer scoring"). The strings are gossipsub's TopicValidatorResult values:
 * - `reject`: not delivered, not forwarded, and the peer that sent it to us (the propagation source) is
 *   charged an invalid message delivery (score P4);
 * - `ignore`: not delivered, not forwarded, nobody charged;
 * - `accept`: delivered and forwarded.
 */
export type GossipVerdict = 'accept' | 'ignore' | 'reject'

export type DecodeRejectReason = InvalidAnnouncementError['reason']
export type VerdictReason = DecodeRejectReason | 'too-frequent' | 'relayed-too-frequent' | 'banned-signer'

export interface VerdictInput {
  /** peer id of the signer (gossipsub `from`); undefined for an unsigned message */
  signer: string | undefined
  /** peer id of the peer the message arrived from */
  source: string
  /** the signer is banned here (graylisted and disconnected, in its cool-off) */
  signerBanned: (signer: string) => boolean
  /** takes one token of the signer's announcement budget; false = over its rate limit */
  takeToken: (signer: string) => boolean
  /** decodes and validates the message; the reason it is invalid, or undefined when it is valid */
  decode: () => DecodeRejectReason | undefined
}

/**
 * Pure decision, cheapest checks first. Every rule that a relay cannot have got wrong rejects (so the
 * sender is charged): validation is deterministic, so an honest relay never forwards an invalid message.
 * Rate limits and bans are local state, so a message over them is rejected only when its signer sent it
 * to us itself; coming through a relay (which may have seen it within the signer's limit) it is ignored.
 */
export function gossipVerdict (input: VerdictInput): { verdict: GossipVerdict, reason?: VerdictReason } {
  const { signer, source } = input
  if (signer === undefined) return { verdict: 'reject', reason: 'unsigned' }
  if (input.signerBanned(signer)) return { verdict: signer === source ? 'reject' : 'ignore', reason: 'banned-signer' }
  if (!input.takeToken(signer)) {
    return signer === source ? { verdict: 'reject', reason: 'too-frequent' } : { verdict: 'ignore', reason: 'relayed-too-frequent' }
  }
  const invalid = input.decode()
  if (invalid !== undefined) return { verdict: 'reject', reason: invalid }
  return { verdict: 'accept' }
}
