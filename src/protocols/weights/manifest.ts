import { createHash } from 'node:crypto'
import type { WeightsManifest } from './codec.js'
import { chunkCountOf } from './codec.js'
import { MAX_CHUNKS_PER_REQUEST, Provenance } from './constants.js'

/** Pure helpers over a manifest (protocols/weights.md): chunk spans, what covers a byte range, verification. */

/** A byte range [offset, offset + bytes) of the file. */
export interface ByteRange { offset: number, bytes: number }

/** A run of consecutive chunks [first, first + count). */
export interface ChunkRun { first: number, count: number }

export function chunkCount (m: Pick<WeightsManifest, 'fileBytes' | 'chunkBytes'>): number {
  return chunkCountOf(m.fileBytes, m.chunkBytes)
}

/** Byte span [start, end) of chunk `i`. */
export function chunkSpan (m: Pick<WeightsManifest, 'fileBytes' | 'chunkBytes'>, i: number): { start: number, end: number } {
  const start = i * m.chunkBytes
  return { start, end: Math.min(start + m.chunkBytes, m.fileBytes) }
}

/** Sorted indices of the chunks that overlap any of `ranges` (empty ranges cover nothing). */
export function chunksCovering (m: Pick<WeightsManifest, 'fileBytes' | 'chunkBytes'>, ranges: readonly ByteRange[]): number[] {
  const set = new Set<number>()
  const n = chunkCount(m)
  for (const r of ranges) {
    if (r.bytes <= 0) continue
    const first = Math.floor(r.offset / m.chunkBytes)
    const last = Math.min(n - 1, Math.floor((r.offset + r.bytes - 1) / m.chunkBytes))
    for (let i = first; i <= last; i++) set.add(i)
  }
  return [...set].sort((a, b) => a - b)
}

/** The chunk indices grouped into runs of consecutive chunks, each at most `maxRun` long. */
export function chunkRuns (chunks: readonly number[], maxRun = MAX_CHUNKS_PER_REQUEST): ChunkRun[] {
  const runs: ChunkRun[] = []
  for (const c of chunks) {
    const last = runs[runs.length - 1]
    if (last !== undefined && last.first + last.count === c && last.count < maxRun) last.count++
    else runs.push({ first: c, count: 1 })
  }
  return runs
}

/** SHA-256 of `bytes`. */
export function sha256 (bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest())
}

/** Whether `bytes` are exactly chunk `i` of the manifest's file (length and SHA-256). */
export function verifyChunk (m: WeightsManifest, i: number, bytes: Uint8Array): boolean {
  const { start, end } = chunkSpan(m, i)
  if (i < 0 || i >= chunkCount(m) || bytes.byteLength !== end - start) return false
  const want = m.chunkSha256.subarray(32 * i, 32 * i + 32)
  return bytesEqual(sha256(bytes), want)
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

export function hex (b: Uint8Array): string { return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') }

export function manifestsEqual (a: WeightsManifest, b: WeightsManifest): boolean {
  return a.fileBytes === b.fileBytes && a.headerBytes === b.headerBytes && a.chunkBytes === b.chunkBytes &&
    a.provenance === b.provenance && bytesEqual(a.sha256, b.sha256) && bytesEqual(a.chunkSha256, b.chunkSha256)
}

/**
 * The manifest a fetcher trusts among those its holders sent (protocols/weights.md "Which manifest a
 * fetcher trusts"): one with provenance HUB if any, else the one most holders sent; ties → the holder
 * with the smallest peer id. Returns it with the holders whose manifest is identical to it.
 */
export function chooseManifest (byHolder: ReadonlyMap<string, WeightsManifest>): { manifest: WeightsManifest, holders: string[] } | undefined {
  const ids = [...byHolder.keys()].sort()
  const groups: Array<{ manifest: WeightsManifest, holders: string[] }> = []
  for (const id of ids) {
    const m = byHolder.get(id)!
    const g = groups.find((x) => manifestsEqualIgnoringProvenance(x.manifest, m))
    if (g === undefined) groups.push({ manifest: m, holders: [id] })
    else {
      g.holders.push(id)
      if (m.provenance === Provenance.Hub) g.manifest = m
    }
  }
  const score = (g: { manifest: WeightsManifest, holders: string[] }): number => (g.manifest.provenance === Provenance.Hub ? 1e9 : 0) + g.holders.length
  // stable sort: groups are in order of their smallest holder id
  groups.sort((x, y) => score(y) - score(x))
  return groups[0]
}

/** Same file and chunking (a HUB and a LOCAL manifest of the same bytes describe one file). */
function manifestsEqualIgnoringProvenance (a: WeightsManifest, b: WeightsManifest): boolean {
  return manifestsEqual({ ...a, provenance: b.provenance }, b)
}
