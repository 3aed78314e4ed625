import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { BulkPathError } from '../../shared/errors/protocol-errors.js'
import { BULK_HELLO_BYTES, MAX_BULK_RECORD_BYTES, MIN_BULK_RECORD_BYTES } from './constants.js'

/**
 * Pure crypto of protocols/weights.md "Bulk path (1.1.0)": ticket keys (HKDF-SHA256), the HELLO
 * (ticketId ‖ HMAC-SHA256), and records sealed with AES-256-GCM under counter nonces, AAD = ticketId.
 * Everything here is node's native crypto, one call per record.
 */

const TAG_BYTES = 16

/** A ticket's identity and keys (one bulk transfer). */
export interface BulkKeys {
  /** (16) */
  ticketId: Uint8Array
  /** (32) HMAC key of the HELLO */
  helloKey: Buffer
  /** (32) AES-256-GCM key of the records */
  dataKey: Buffer
}

/** A fresh ticket: random id and secret (what BULK_TICKET carries). */
export function newTicket (): { ticketId: Uint8Array, secret: Uint8Array } {
  return { ticketId: new Uint8Array(randomBytes(16)), secret: new Uint8Array(randomBytes(32)) }
}

/** The keys of ticket (`ticketId`, `secret`). */
export function bulkKeys (ticketId: Uint8Array, secret: Uint8Array): BulkKeys {
  const key = (info: string): Buffer => Buffer.from(hkdfSync('sha256', secret, ticketId, info, 32))
  return { ticketId, helloKey: key('exo-p2p/weights-bulk/1.1.0 hello'), dataKey: key('exo-p2p/weights-bulk/1.1.0 data') }
}

/** The 48-byte HELLO a fetcher writes first on the bulk connection. */
export function helloBytes (keys: BulkKeys): Buffer {
  return Buffer.concat([keys.ticketId, createHmac('sha256', keys.helloKey).update(keys.ticketId).digest()])
}

/** Whether `hello` (48 bytes) proves knowledge of `keys` (constant-time compare). */
export function helloValid (keys: BulkKeys, hello: Uint8Array): boolean {
  if (hello.byteLength !== BULK_HELLO_BYTES) return false
  const want = helloBytes(keys)
  return timingSafeEqual(want, hello)
}

function nonce (index: number): Buffer {
  const n = Buffer.alloc(12)
  n.writeBigUInt64LE(BigInt(index), 4)
  return n
}

/**
 * Record `index` carrying `plaintext` (a weights frame without its length prefix), as the buffers to
 * write in order: the u32 LE length, the ciphertext, the tag (no concatenation: 1 MiB pieces stay one buffer).
 */
export function sealRecord (keys: BulkKeys, index: number, plaintext: Uint8Array): Buffer[] {
  const length = plaintext.byteLength + TAG_BYTES
  if (length < MIN_BULK_RECORD_BYTES || length > MAX_BULK_RECORD_BYTES) throw new RangeError(`a bulk record of ${length} bytes is not in [${MIN_BULK_RECORD_BYTES}, ${MAX_BULK_RECORD_BYTES}]`)
  const cipher = createCipheriv('aes-256-gcm', keys.dataKey, nonce(index), { authTagLength: TAG_BYTES })
  cipher.setAAD(keys.ticketId)
  const body = cipher.update(plaintext)
  cipher.final()
  const prefix = Buffer.allocUnsafe(4)
  prefix.writeUInt32LE(length, 0)
  return [prefix, body, cipher.getAuthTag()]
}

/** Whether a record length prefix is within protocols/weights.md's bounds. */
export function recordLengthValid (length: number): boolean {
  return length >= MIN_BULK_RECORD_BYTES && length <= MAX_BULK_RECORD_BYTES
}

/** Opens record `index` (ciphertext ‖ tag, without the length prefix); throws `BulkPathError` ('record') when it fails. */
export function openRecord (keys: BulkKeys, index: number, record: Uint8Array): Buffer {
  if (!recordLengthValid(record.byteLength)) throw new BulkPathError('record', `bulk record ${index} of ${record.byteLength} bytes`)
  const decipher = createDecipheriv('aes-256-gcm', keys.dataKey, nonce(index), { authTagLength: TAG_BYTES })
  decipher.setAAD(keys.ticketId)
  decipher.setAuthTag(record.subarray(record.byteLength - TAG_BYTES))
  const out = decipher.update(record.subarray(0, record.byteLength - TAG_BYTES))
  try {
    decipher.final()
  } catch (err) {
    throw new BulkPathError('record', `bulk record ${index} failed authentication (tampered or corrupted on the way)`, { cause: err })
  }
  return out
}
