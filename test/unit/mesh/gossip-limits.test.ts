// Pure parts of protocols/membership.md "Peer scoring" and "Rate limits": the rate limiter, the validator's
// verdict, the score standing, the ban list, and the score parameters run through gossipsub's own PeerScore.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { peerIdFromString } from '@libp2p/peer-id'
import { PeerScore, createPeerScoreParams, validatePeerScoreThresholds } from '@libp2p/gossipsub/score'
import type { ComponentLogger } from '@libp2p/interface'
import { RateLimiter } from '../../../src/mesh/membership/rate-limiter.js'
import { gossipVerdict } from '../../../src/mesh/membership/gossip-verdict.js'
import type { VerdictInput } from '../../../src/mesh/membership/gossip-verdict.js'
import { RECEIVE_RATE_BURST, RECEIVE_RATE_PER_SECOND, SEND_RATE_BURST, SEND_RATE_PER_SECOND, MEMBERSHIP_TOPIC } from '../../../src/mesh/membership/constants.js'
import { SCORE_THRESHOLDS, membershipScoreParams, scoreStanding } from '../../../src/mesh/gossip-scoring.js'
import { PeerBans, bannedPeersGater } from '../../../src/mesh/peer-bans.js'

describe('RateLimiter', () => {
  it('allows a burst, then the sustained rate, per key', () => {
    const l = new RateLimiter({ burst: 3, perSecond: 2 })
    assert.deepEqual([0, 0, 0, 0].map(() => l.take('a', 0)), [true, true, true, false])
    assert.equal(l.take('b', 0), true, 'another key has its own bucket')
    assert.equal(l.waitMs('a', 0), 500)
    assert.equal(l.take('a', 499), false)
    assert.equal(l.take('a', 500), true)
    assert.equal(l.take('a', 500), false)
    // a long pause refills to the burst, not beyond
    assert.deepEqual([0, 0, 0, 0].map(() => l.take('a', 100_000)), [true, true, true, false])
  })

  it('a sender at its send limit never exceeds the receive limit', () => {
    const send = new RateLimiter({ burst: SEND_RATE_BURST, perSecond: SEND_RATE_PER_SECOND })
    const recv = new RateLimiter({ burst: RECEIVE_RATE_BURST, perSecond: RECEIVE_RATE_PER_SECOND })
    let sent = 0
    for (let t = 0; t < 120_000; t += 10) { // tries every 10 ms for 2 minutes, sends whenever allowed
      if (!send.take('me', t)) continue
      sent++
      assert.ok(recv.take('me', t), `receiver refused message ${sent} at ${t} ms`)
    }
    assert.ok(sent >= SEND_RATE_BURST + 119 * SEND_RATE_PER_SECOND, `sent ${sent}`)
  })

  it('stays bounded in keys; the busiest bucket survives eviction', () => {
    const l = new RateLimiter({ burst: 2, perSecond: 1 }, 8)
    l.take('flooder', 0); l.take('flooder', 0)
    for (let i = 0; i < 100; i++) { l.take(`k${i}`, 0); l.take('flooder', 0) }
    assert.ok(l.size <= 8)
    assert.equal(l.take('flooder', 0), false, 'its debt is remembered')
  })

  it('rejects a nonsensical limit', () => {
    assert.throws(() => new RateLimiter({ burst: 0, perSecond: 1 }), RangeError)
    assert.throws(() => new RateLimiter({ burst: 1, perSecond: 0 }), RangeError)
  })
})

describe('gossipVerdict', () => {
  const input = (o: Partial<VerdictInput>): VerdictInput => ({
    signer: 'S', source: 'S', signerBanned: () => false, takeToken: () => true, decode: () => undefined, ...o
  })

  it('accepts a valid message within the rate', () => {
    assert.deepEqual(gossipVerdict(input({})), { verdict: 'accept' })
  })

  it('rejects what is invalid whoever relayed it (validation is deterministic)', () => {
    for (const reason of ['oversized', 'malformed', 'foreign'] as const) {
      assert.deepEqual(gossipVerdict(input({ decode: () => reason })), { verdict: 'reject', reason })
      assert.deepEqual(gossipVerdict(input({ source: 'R', decode: () => reason })), { verdict: 'reject', reason })
    }
    assert.deepEqual(gossipVerdict(input({ signer: undefined })), { verdict: 'reject', reason: 'unsigned' })
  })

  it('over the rate: rejects the signer itself, ignores a relay', () => {
    assert.deepEqual(gossipVerdict(input({ takeToken: () => false })), { verdict: 'reject', reason: 'too-frequent' })
    assert.deepEqual(gossipVerdict(input({ source: 'R', takeToken: () => false })), { verdict: 'ignore', reason: 'relayed-too-frequent' })
  })

  it('a banned signer: rejected from itself, ignored through a relay; no token taken, nothing decoded', () => {
    const fail = (): never => { throw new Error('must not be called') }
    const banned = { signerBanned: (s: string) => s === 'S', takeToken: fail, decode: fail }
    assert.deepEqual(gossipVerdict(input(banned)), { verdict: 'reject', reason: 'banned-signer' })
    assert.deepEqual(gossipVerdict(input({ ...banned, source: 'R' })), { verdict: 'ignore', reason: 'banned-signer' })
  })

  it('checks the rate before decoding (a flood costs no parsing)', () => {
    let decoded = 0
    gossipVerdict(input({ takeToken: () => false, decode: () => { decoded++; return undefined } }))
    assert.equal(decoded, 0)
  })
})

describe('score standing and ban list', () => {
  it('maps scores onto the documented thresholds', () => {
    assert.equal(scoreStanding(0), 'ok')
    assert.equal(scoreStanding(-0.5), 'pruned')
    assert.equal(scoreStanding(-10), 'pruned')
    assert.equal(scoreStanding(-10.01), 'no-gossip')
    assert.equal(scoreStanding(-50.01), 'no-publish')
    assert.equal(scoreStanding(-80), 'no-publish')
    assert.equal(scoreStanding(-80.01), 'graylisted')
    assert.equal(scoreStanding(Number.NaN), 'graylisted')
    validatePeerScoreThresholds(SCORE_THRESHOLDS)
  })

  it('bans for the cool-off, in both directions of the gater, then lets the peer back', () => {
    const bans = new PeerBans(60_000)
    const id = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
    assert.equal(bans.ban(id, 'graylisted', 1000), true)
    assert.equal(bans.ban(id, 'graylisted', 2000), false, 'not extended')
    let now = 30_000
    const gater = bannedPeersGater(bans, () => now)
    const pid = peerIdFromString(id)
    assert.equal(gater.denyDialPeer?.(pid), true)
    assert.equal(gater.denyInboundEncryptedConnection?.(pid, undefined as never), true)
    assert.equal(gater.denyOutboundEncryptedConnection?.(pid, undefined as never), true)
    assert.deepEqual(bans.list(now), [{ peerId: id, reason: 'graylisted', remainingMs: 31_000 }])
    now = 61_000
    assert.equal(gater.denyDialPeer?.(pid), false)
    assert.deepEqual(bans.list(now), [])
  })

  it('holds at most maxEntries bans', () => {
    const bans = new PeerBans(1000, 4)
    for (let i = 0; i < 10; i++) bans.ban(`p${i}`, 'oversized-rpc', i)
    assert.equal(bans.list(5).length, 4)
    assert.equal(bans.isBanned('p9', 5), true)
  })
})

describe('membership score parameters in gossipsub\'s PeerScore', () => {
  const logger: ComponentLogger = { forComponent: () => Object.assign(() => {}, { error: () => {}, trace: () => {}, newScope: () => { throw new Error('unused') }, enabled: false }) as never }
  const scoreAfter = (invalid: number[], decayTicks = 0): number => {
    const ps = new PeerScore(createPeerScoreParams(membershipScoreParams()), null, logger, { scoreCacheValidityMs: 0 })
    ps.addPeer('X')
    for (const n of invalid) {
      for (let i = 0; i < n; i++) ps.rejectInvalidMessage('X', MEMBERSHIP_TOPIC)
      ps.refreshScores() // one decay interval (1 s) after each batch
    }
    for (let i = 0; i < decayTicks; i++) ps.refreshScores()
    return ps.score('X')
  }

  it('an honest peer scores 0; a few invalid messages are forgiven; a burst graylists', () => {
    assert.equal(scoreAfter([]), 0)
    assert.equal(scoreStanding(scoreAfter([1])), 'pruned') // one mistake: out of the mesh, still served
    assert.equal(scoreStanding(scoreAfter([3])), 'no-gossip')
    assert.equal(scoreStanding(scoreAfter([4])), 'no-publish')
    assert.equal(scoreStanding(scoreAfter([5])), 'graylisted')
    assert.equal(scoreStanding(scoreAfter([5], 40)), 'ok', 'decays to zero within ~40 s once it stops')
  })

  it('P7: three behaviour penalties are free, six graylist', () => {
    const withPenalties = (n: number): number => {
      const ps = new PeerScore(createPeerScoreParams(membershipScoreParams()), null, logger, { scoreCacheValidityMs: 0 })
      ps.addPeer('X')
      ps.addPenalty('X', n, 'test' as never)
      return ps.score('X')
    }
    assert.equal(withPenalties(3), 0)
    assert.equal(scoreStanding(withPenalties(5)), 'no-gossip')
    assert.equal(scoreStanding(withPenalties(6)), 'graylisted')
  })

  it('one invalid message every 10 s never graylists; 1 per second does', () => {
    const every10s = Array.from({ length: 200 }, (_, i) => (i % 10 === 0 ? 1 : 0))
    assert.notEqual(scoreStanding(scoreAfter(every10s)), 'graylisted')
    assert.ok(scoreAfter(every10s) > SCORE_THRESHOLDS.publishThreshold)
    assert.equal(scoreStanding(scoreAfter(Array.from({ length: 20 }, () => 1))), 'graylisted')
  })
})
