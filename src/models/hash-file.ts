import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { AbortedError } from '../shared/errors/exo-error.js'

/**
 * What a Hub file must hash to: `sha256` of the content for LFS / Xet files (`lfs.oid`, `X-Linked-Etag`),
 * the git blob id `sha1("blob {size}\0" + content)` for files stored in git itself.
 */
export interface Checksum { kind: 'sha256' | 'gitsha1', hex: string }

/** The checksum a Hub file is verified against: the LFS sha256 when known, else a git sha1 etag / oid. */
export function checksumOf (sha256: string | undefined, etag: string | undefined, oid: string | undefined): Checksum | undefined {
  const hex = (s: string | undefined, n: number): string | undefined => (s !== undefined && new RegExp(`^[0-9a-f]{${n}}$`).test(s.toLowerCase()) ? s.toLowerCase() : undefined)
  const sha = hex(sha256, 64) ?? hex(etag, 64)
  if (sha !== undefined) return { kind: 'sha256', hex: sha }
  const git = hex(oid, 40) ?? hex(etag, 40)
  return git === undefined ? undefined : { kind: 'gitsha1', hex: git }
}

/** Hex digest of a file's first `size` bytes, read as a stream. */
export async function hashFile (path: string, kind: Checksum['kind'], size: number, signal?: AbortSignal): Promise<string> {
  const h = createHash(kind === 'sha256' ? 'sha256' : 'sha1')
  if (kind === 'gitsha1') h.update(`blob ${size}\0`)
  if (size > 0) {
    try {
      for await (const chunk of createReadStream(path, { start: 0, end: size - 1, highWaterMark: 1 << 20, ...(signal !== undefined ? { signal } : {}) })) h.update(chunk as Buffer)
    } catch (err) {
      if (signal?.aborted === true) throw new AbortedError('hashing aborted', { cause: signal.reason })
      throw err
    }
  }
  return h.digest('hex')
}
