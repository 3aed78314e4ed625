import { createHash } from 'node:crypto'
import { open, stat } from 'node:fs/promises'
import { readGguf } from '../../engine/gguf/gguf-reader.js'
import { throwIfAborted } from '../../shared/errors/exo-error.js'
import { CHUNK_BYTES, Provenance } from '../../protocols/weights/index.js'
import type { WeightsManifest } from '../../protocols/weights/index.js'

/**
 * The manifest of a local model file (protocols/weights.md MANIFEST): size, header size (the GGUF
 * data offset), the whole-file SHA-256 and one SHA-256 per chunk, read in one pass. Provenance is HUB
 * when `hubSha256` (the Hub's `lfs.oid`, lowercase hex) is given and equals the file's hash, else LOCAL.
 */
export async function buildManifest (path: string, options: { chunkBytes?: number, hubSha256?: string, signal?: AbortSignal } = {}): Promise<WeightsManifest> {
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES
  const headerBytes = readGguf(path).dataOffset
  const fh = await open(path, 'r')
  try {
    const size = (await fh.stat()).size
    const n = Math.ceil(size / chunkBytes)
    const chunkSha256 = new Uint8Array(32 * n)
    const whole = createHash('sha256')
    const buf = Buffer.allocUnsafe(chunkBytes)
    for (let i = 0; i < n; i++) {
      throwIfAborted(options.signal)
      const len = Math.min(chunkBytes, size - i * chunkBytes)
      let got = 0
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, i * chunkBytes + got)
        if (bytesRead === 0) throw new Error(`${path} shrank while hashing (chunk ${i})`)
        got += bytesRead
      }
      const piece = buf.subarray(0, len)
      whole.update(piece)
      chunkSha256.set(createHash('sha256').update(piece).digest(), 32 * i)
    }
    const sha256 = new Uint8Array(whole.digest())
    const hex = Buffer.from(sha256).toString('hex')
    const provenance = options.hubSha256 !== undefined && options.hubSha256.toLowerCase() === hex ? Provenance.Hub : Provenance.Local
    return { fileBytes: size, headerBytes: Math.min(headerBytes, size), chunkBytes, sha256, provenance, chunkSha256 }
  } finally {
    await fh.close()
  }
}

/** Manifests of local files, computed once per (path, size, modification time); concurrent askers share one pass. */
export class ManifestCache {
  private readonly entries = new Map<string, { key: string, manifest: Promise<WeightsManifest> }>()

  async get (path: string, options: { hubSha256?: string, signal?: AbortSignal } = {}): Promise<WeightsManifest> {
    const st = await stat(path)
    const key = `${st.size}:${st.mtimeMs}`
    const hit = this.entries.get(path)
    if (hit?.key === key) return await hit.manifest
    // hashing is not tied to the first asker's signal: others may wait for the same pass
    const manifest = buildManifest(path, options.hubSha256 !== undefined ? { hubSha256: options.hubSha256 } : {})
    this.entries.set(path, { key, manifest })
    manifest.catch(() => { if (this.entries.get(path)?.manifest === manifest) this.entries.delete(path) })
    return await manifest
  }
}
