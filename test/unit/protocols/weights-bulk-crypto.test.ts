import assert from 'node:assert/strict'
import { test } from 'node:test'
import { bulkKeys, helloBytes, helloValid, newTicket, openRecord, sealRecord } from '../../../src/protocols/weights/bulk-crypto.js'
import { dataFrame, decodeWeightsFrame, encodeWeightsFrame } from '../../../src/protocols/weights/codec.js'
import { FRAME_PREFIX_BYTES } from '../../../src/protocols/framing.js'
import { MAX_BULK_RECORD_BYTES } from '../../../src/protocols/weights/constants.js'
import { BulkPathError, ProtocolDecodeError, ProtocolEncodeError } from '../../../src/shared/errors/protocol-errors.js'

/** protocols/weights.md "Bulk path (1.1.0)": the new frames, ticket keys, HELLO and records. */

const raw = (bytes: Uint8Array): { type: number, body: Uint8Array } => ({ type: bytes[4]!, body: bytes.subarray(5) })

test('BULK_RANGE_REQUEST and BULK_TICKET round-trip; bad tickets are refused both ways', () => {
  const req = { type: 'bulk-range-request' as const, modelId: 'm', sha256: new Uint8Array(32).fill(3), firstChunk: 7, chunkCount: 16 }
  assert.deepEqual(decodeWeightsFrame(raw(encodeWeightsFrame(req))), req)
  const t = newTicket()
  const ticket = { type: 'bulk-ticket' as const, port: 40123, ...t }
  const enc = encodeWeightsFrame(ticket)
  assert.equal(enc.byteLength, 5 + 2 + 16 + 32)
  assert.deepEqual(decodeWeightsFrame(raw(enc)), ticket)
  assert.throws(() => encodeWeightsFrame({ ...ticket, port: 0 }), ProtocolEncodeError)
  assert.throws(() => encodeWeightsFrame({ ...ticket, secret: new Uint8Array(16) }), ProtocolEncodeError)
  assert.throws(() => decodeWeightsFrame({ type: 7, body: enc.subarray(5, -1) }), ProtocolDecodeError)
  const zeroPort = enc.slice(5); zeroPort[0] = 0; zeroPort[1] = 0
  assert.throws(() => decodeWeightsFrame({ type: 7, body: zeroPort }), ProtocolDecodeError)
})

test('tickets: fresh random ids and secrets; keys differ per ticket and per purpose', () => {
  const a = newTicket(); const b = newTicket()
  assert.notDeepEqual(a.ticketId, b.ticketId)
  assert.notDeepEqual(a.secret, b.secret)
  const ka = bulkKeys(a.ticketId, a.secret)
  assert.notDeepEqual(ka.helloKey, ka.dataKey)
  assert.notDeepEqual(ka.dataKey, bulkKeys(b.ticketId, b.secret).dataKey)
})

test('HELLO: valid only with the ticket\'s secret, exact length, any flipped bit refused', () => {
  const t = newTicket()
  const keys = bulkKeys(t.ticketId, t.secret)
  const hello = helloBytes(keys)
  assert.equal(hello.byteLength, 48)
  assert.ok(helloValid(keys, hello))
  for (const i of [0, 15, 16, 47]) { const h = Buffer.from(hello); h[i]! ^= 1; assert.equal(helloValid(keys, h), false, `bit flipped at ${i}`) }
  assert.equal(helloValid(keys, hello.subarray(0, 47)), false)
  const other = newTicket()
  assert.equal(helloValid(keys, helloBytes(bulkKeys(t.ticketId, other.secret))), false, 'same id, another secret')
})

test('records: a DATA frame seals and opens in order; tampered, reordered or foreign records fail as BulkPathError', () => {
  const t = newTicket()
  const keys = bulkKeys(t.ticketId, t.secret)
  const frame = dataFrame(3, 1 << 20, 1 << 20)
  frame.piece.fill(0xab)
  const parts = sealRecord(keys, 0, frame.bytes.subarray(FRAME_PREFIX_BYTES))
  const record = Buffer.concat(parts)
  const length = record.readUInt32LE(0)
  assert.equal(length, MAX_BULK_RECORD_BYTES, 'a whole 1 MiB piece is the largest record')
  const body = record.subarray(4)
  assert.notDeepEqual(body.subarray(9, 41), Buffer.alloc(32, 0xab), 'the bytes on the wire are not the plaintext')
  const plain = openRecord(keys, 0, body)
  const f = decodeWeightsFrame({ type: plain[0]!, body: plain.subarray(1) })
  assert.ok(f.type === 'data' && f.chunkIndex === 3 && f.offset === 1 << 20 && f.bytes.every((b) => b === 0xab))
  const tampered = Buffer.from(body); tampered[1000]! ^= 1
  assert.throws(() => openRecord(keys, 0, tampered), BulkPathError)
  const tag = Buffer.from(body); tag[tag.byteLength - 1]! ^= 1
  assert.throws(() => openRecord(keys, 0, tag), BulkPathError)
  assert.throws(() => openRecord(keys, 1, body), BulkPathError, 'record 0 replayed as record 1')
  const other = newTicket()
  assert.throws(() => openRecord(bulkKeys(other.ticketId, other.secret), 0, body), BulkPathError, 'another ticket\'s keys')
  assert.throws(() => openRecord(keys, 0, body.subarray(0, 16)), BulkPathError, 'shorter than a tag + a byte')
  assert.throws(() => sealRecord(keys, 0, new Uint8Array(MAX_BULK_RECORD_BYTES)), RangeError)
})
