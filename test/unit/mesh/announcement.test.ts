import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { decodeMembershipMessage, encodeMembershipMessage } from '../../../src/mesh/membership/announcement.js'
import { InvalidAnnouncementError } from '../../../src/shared/errors/mesh-errors.js'
import { makeAnnouncement } from './fixtures.js'

const enc = (x: unknown): Uint8Array => new TextEncoder().encode(typeof x === 'string' ? x : JSON.stringify(x))

function reason (fn: () => unknown): string {
  try { fn() } catch (err) {
    assert.ok(err instanceof InvalidAnnouncementError, `unexpected ${String(err)}`)
    return err.reason
  }
  assert.fail('expected a rejection')
}

describe('membership message validation', () => {
  const ann = makeAnnouncement('12D3KooWAlice')

  it('round-trips a valid announcement and a leave', () => {
    assert.deepEqual(decodeMembershipMessage({ data: encodeMembershipMessage(ann), from: ann.peerId }), ann)
    const leave = { v: 1 as const, kind: 'leave' as const, peerId: ann.peerId, epoch: 5, seq: 9 }
    assert.deepEqual(decodeMembershipMessage({ data: encodeMembershipMessage(leave), from: ann.peerId }), leave)
  })

  it('carries devices and plan stage gpuLayers (1.3); a 1.2 announcement without them stays valid', () => {
    const gpu = { backend: 'cuda' as const, name: 'NVIDIA H200', totalBytes: 150e9, freeBytes: 140e9, budgetBytes: 139e9, computeMsPerLayer: 0.05, maxLayers: 20 }
    const withDevices = { ...ann, devices: [gpu, { ...gpu, backend: 'vulkan' as const, name: 'llvmpipe', computeMsPerLayer: 0 }] }
    assert.deepEqual(decodeMembershipMessage({ data: encodeMembershipMessage(withDevices), from: ann.peerId }), withDevices)
    assert.equal((decodeMembershipMessage({ data: enc(ann), from: ann.peerId }) as typeof withDevices).devices, undefined)
    assert.equal(reason(() => decodeMembershipMessage({ data: enc({ ...ann, devices: [{ ...gpu, backend: 'rocm' }] }), from: ann.peerId })), 'malformed')
    assert.equal(reason(() => decodeMembershipMessage({ data: enc({ ...ann, devices: [{ ...gpu, freeBytes: -1 }] }), from: ann.peerId })), 'malformed')
    assert.equal(reason(() => decodeMembershipMessage({ data: enc({ ...ann, devices: Array(17).fill(gpu) }), from: ann.peerId })), 'malformed')
  })

  it('strips unknown fields (a 1.x sender may add some)', () => {
    const decoded = decodeMembershipMessage({ data: enc({ ...ann, futureField: 7 }), from: ann.peerId })
    assert.equal((decoded as unknown as Record<string, unknown>).futureField, undefined)
  })

  it('rejects unsigned, oversized, malformed and foreign messages with the reason', () => {
    assert.equal(reason(() => decodeMembershipMessage({ data: enc(ann), from: undefined })), 'unsigned')
    const big = enc({ ...ann, name: 'x', pad: 'y'.repeat(70_000) })
    assert.equal(reason(() => decodeMembershipMessage({ data: big, from: ann.peerId })), 'oversized')
    assert.equal(reason(() => decodeMembershipMessage({ data: enc('not json {'), from: ann.peerId })), 'malformed')
    assert.equal(reason(() => decodeMembershipMessage({ data: new Uint8Array([0xff, 0xfe, 0x7b]), from: ann.peerId })), 'malformed')
    assert.equal(reason(() => decodeMembershipMessage({ data: enc([1, 2]), from: ann.peerId })), 'malformed')
    assert.equal(reason(() => decodeMembershipMessage({ data: enc({ ...ann, v: 2 }), from: ann.peerId })), 'malformed')
    assert.equal(reason(() => decodeMembershipMessage({ data: enc({ ...ann, capabilities: { ...ann.capabilities, cpuCores: -1 } }), from: ann.peerId })), 'malformed')
    assert.equal(reason(() => decodeMembershipMessage({ data: enc({ ...ann, shards: [{ model: 'm', start: 4, end: 4, ready: true }] }), from: ann.peerId })), 'malformed')
    assert.equal(reason(() => decodeMembershipMessage({ data: enc({ ...ann, links: [{ peerId: 'x', rttMs: 1, rttClassMs: 3, bandwidthBytesPerSec: 0 }] }), from: ann.peerId })), 'malformed')
    assert.equal(reason(() => decodeMembershipMessage({ data: enc(ann), from: '12D3KooWMallory' })), 'foreign')
  })

  it('refuses to encode a message that would be rejected', () => {
    assert.equal(reason(() => encodeMembershipMessage({ ...ann, name: '' })), 'malformed')
    const links = Array.from({ length: 256 }, (_, i) => ({ peerId: `12D3KooW${'p'.repeat(110)}${i}`, rttMs: 1, rttClassMs: 1, bandwidthBytesPerSec: 0 }))
    const addresses = Array.from({ length: 16 }, () => 'a'.repeat(256))
    const models = Array.from({ length: 256 }, (_, i) => ({ id: `${'m'.repeat(120)}${i}`, sizeBytes: 1e12 }))
    assert.equal(reason(() => encodeMembershipMessage({ ...ann, links, addresses, models })), 'oversized')
  })
})
