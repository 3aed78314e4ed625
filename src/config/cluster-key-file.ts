import { randomBytes } from 'node:crypto'
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { ClusterKeyError } from '../shared/errors/config-errors.js'

/** Text format of a cluster key file (protocols/membership.md "Cluster key"). */
const HEADER = 'exo-p2p-cluster-key/v1'

export function formatClusterKey (key: Uint8Array): string {
  if (key.byteLength !== 32) throw new ClusterKeyError(`a cluster key is 32 bytes, got ${key.byteLength}`)
  return `${HEADER}\n${Buffer.from(key).toString('hex')}\n`
}

/** Returns the key as 64 lowercase hex digits. */
export function parseClusterKey (text: string, file: string): string {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0)
  if (lines[0] !== HEADER) throw new ClusterKeyError(`${file}: first line must be "${HEADER}"`)
  const hex = lines[1]?.toLowerCase() ?? ''
  if (!/^[0-9a-f]{64}$/.test(hex) || lines.length !== 2) {
    throw new ClusterKeyError(`${file}: second line must be 64 hex digits (32 bytes)`)
  }
  return hex
}

export function readClusterKeyFile (file: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ClusterKeyError(`cannot read cluster key file ${file}: ${(err as Error).message}`, { cause: err })
  }
  return parseClusterKey(text, file)
}

/**
 * The permission bits of a secret file (cluster key, peer identity) when group or others may read or
 * write it (`mode & 0o077`), else undefined (also when the file does not exist). A node warns at start.
 */
export function looseSecretFileMode (file: string): number | undefined {
  try {
    const mode = statSync(file).mode & 0o777
    return (mode & 0o077) !== 0 ? mode : undefined
  } catch {
    return undefined
  }
}

/** Writes a fresh random key (mode 0600, whatever the umask); refuses to overwrite an existing file. */
export function writeNewClusterKeyFile (file: string): void {
  try {
    writeFileSync(file, formatClusterKey(randomBytes(32)), { mode: 0o600, flag: 'wx' })
    chmodSync(file, 0o600)
  } catch (err) {
    throw new ClusterKeyError(`cannot write cluster key file ${file}: ${(err as Error).message}`, { cause: err })
  }
}
