import { chmodSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { PeerIdentityError } from '../shared/errors/mesh-errors.js'

export const PEER_KEY_FILE = 'peer-key'

/**
 * The node's Ed25519 identity, persisted in `<dataDir>/peer-key` (libp2p protobuf encoding, mode 0600)
 * so a restarted node keeps its peer id. Creates the data dir and the key on first use.
 */
export async function loadOrCreatePeerKey (dataDir: string): Promise<PrivateKey> {
  const file = join(dataDir, PEER_KEY_FILE)
  if (existsSync(file)) {
    try {
      const key = privateKeyFromProtobuf(readFileSync(file))
      if (key.type !== 'Ed25519') throw new Error(`key type ${key.type}, expected Ed25519`)
      return key
    } catch (err) {
      throw new PeerIdentityError(`cannot read peer identity ${file}: ${(err as Error).message}`, { cause: err })
    }
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const key = await generateKeyPair('Ed25519')
  writeFileSync(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  chmodSync(file, 0o600)
  return key
}
