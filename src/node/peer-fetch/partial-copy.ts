import { createHash } from 'node:crypto'
import { copyFile, link, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Provenance, chunkCount, chunkSpan, manifestsEqual } from '../../protocols/weights/index.js'
import type { WeightsManifest } from '../../protocols/weights/index.js'
import { PartialCopyError } from '../../shared/errors/model-errors.js'

/** Longest time a verified chunk waits to be recorded in the state file. */
const STATE_WRITE_MS = 500

/** The state file next to a sparse partial copy (protocols/weights.md "Where it writes"). */
interface StateJson {
  v: 1
  modelId: string
  manifest: { fileBytes: number, headerBytes: number, chunkBytes: number, sha256: string, provenance: number, chunkSha256: string }
  /** bitmap of verified chunks, base64 (bit i of byte i >> 3) */
  verified: string
}

function manifestToJson (m: WeightsManifest): StateJson['manifest'] {
  return { fileBytes: m.fileBytes, headerBytes: m.headerBytes, chunkBytes: m.chunkBytes, sha256: Buffer.from(m.sha256).toString('hex'), provenance: m.provenance, chunkSha256: Buffer.from(m.chunkSha256).toString('base64') }
}

function manifestFromJson (j: StateJson['manifest']): WeightsManifest {
  return { fileBytes: j.fileBytes, headerBytes: j.headerBytes, chunkBytes: j.chunkBytes, sha256: new Uint8Array(Buffer.from(j.sha256, 'hex')), provenance: j.provenance as Provenance, chunkSha256: new Uint8Array(Buffer.from(j.chunkSha256, 'base64')) }
}

/** Paths of the partial copy of `modelId` under `dir` (`<data dir>/models/.partial`). */
export function partialPaths (dir: string, modelId: string): { data: string, state: string } {
  const data = join(dir, `${modelId}.gguf`)
  return { data, state: `${data}.fetch.json` }
}

/**
 * A sparse file of the model's full size holding only verified chunks, and its state file (the
 * manifest and which chunks are verified). A chunk is written, then the state rewritten (write +
 * rename), so a process killed at any point resumes with what it had; a chunk written but not yet
 * recorded is fetched again. Writes are serialised.
 */
export class PartialCopy {
  private chain: Promise<void> = Promise.resolve()
  private persistTimer: NodeJS.Timeout | undefined
  private verifiedCount = 0
  private verifiedBytesTotal = 0

  private constructor (public modelId: string, readonly manifest: WeightsManifest, public path: string,
    private statePath: string, private readonly fh: FileHandle, private readonly bits: Uint8Array) {
    for (let i = 0; i < chunkCount(manifest); i++) if (this.has(i)) { this.verifiedCount++; this.verifiedBytesTotal += chunkSpan(manifest, i).end - chunkSpan(manifest, i).start }
  }

  /** The manifest a previous run recorded for `modelId`, if any (to resume). */
  static async recordedManifest (dir: string, modelId: string): Promise<WeightsManifest | undefined> {
    const state = await readState(partialPaths(dir, modelId).state)
    return state === undefined ? undefined : manifestFromJson(state.manifest)
  }

  /** Opens (resuming when the recorded manifest describes the same file) or creates the copy. */
  static async open (dir: string, modelId: string, manifest: WeightsManifest): Promise<PartialCopy> {
    const { data, state } = partialPaths(dir, modelId)
    await mkdir(dirname(data), { recursive: true })
    const recorded = await readState(state)
    const n = chunkCount(manifest)
    const same = recorded !== undefined && manifestsEqual({ ...manifestFromJson(recorded.manifest), provenance: manifest.provenance }, manifest)
    // resume: the recorded bitmap of the same file; otherwise start over
    const bits = new Uint8Array(Math.ceil(n / 8))
    // the recorded chunks count only if the data file is still there (a state file alone vouches for nothing)
    let fh = same ? await open(data, 'r+').catch(() => undefined) : undefined
    if (fh !== undefined) bits.set(new Uint8Array(Buffer.from(recorded!.verified, 'base64')).subarray(0, bits.byteLength))
    else await rm(state, { force: true })
    fh ??= await open(data, 'w+')
    if ((await fh.stat()).size !== manifest.fileBytes) await fh.truncate(manifest.fileBytes)
    const copy = new PartialCopy(modelId, manifest, data, state, fh, bits)
    await copy.persist()
    return copy
  }

  has (i: number): boolean { return ((this.bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0 }
  get verifiedChunks (): number { return this.verifiedCount }
  get verifiedBytes (): number { return this.verifiedBytesTotal }
  get complete (): boolean { return this.verifiedCount === chunkCount(this.manifest) }

  /**
   * Writes verified chunk `i` (the caller verified it; given whole or as its pieces in order) and
   * records it. The state file is rewritten at most every STATE_WRITE_MS (and on close): a chunk written
   * but not yet recorded when the process dies is fetched again.
   */
  async write (i: number, bytes: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const pieces = bytes instanceof Uint8Array ? [bytes] : bytes
    const run = this.chain.then(async () => {
      if (this.has(i)) return
      const { start, end } = chunkSpan(this.manifest, i)
      const n = pieces.reduce((a, p) => a + p.byteLength, 0)
      if (n !== end - start) throw new PartialCopyError(`chunk ${i} of ${this.modelId} has ${n} bytes, not ${end - start}`)
      let pos = start
      for (const p of pieces) {
        let done = 0
        while (done < p.byteLength) done += (await this.fh.write(p, done, p.byteLength - done, pos + done)).bytesWritten
        pos += p.byteLength
      }
      this.bits[i >> 3]! |= 1 << (i & 7)
      this.verifiedCount++
      this.verifiedBytesTotal += n
      this.persistSoon()
    })
    this.chain = run.catch(() => {})
    await run
  }

  /**
   * Records verified chunk `i` that another writer (the bulk worker, protocols/weights/bulk-receiver.ts)
   * already wrote into the file at its offset, after it verified it. Ordered with `write`.
   */
  async markWritten (i: number): Promise<void> {
    const run = this.chain.then(() => {
      if (this.has(i)) return
      const { start, end } = chunkSpan(this.manifest, i)
      this.bits[i >> 3]! |= 1 << (i & 7)
      this.verifiedCount++
      this.verifiedBytesTotal += end - start
      this.persistSoon()
    })
    this.chain = run.catch(() => {})
    await run
  }

  /**
   * Renames the copy and its state file in their folder to `fileId` (part 1 of a split model is learnt
   * to be one only from its header: `<id>.gguf` becomes `<id>-00001-of-0000N.gguf`). Writes wait meanwhile.
   */
  async moveTo (fileId: string): Promise<void> {
    const run = this.chain.then(async () => {
      const next = partialPaths(dirname(this.path), fileId)
      await rename(this.path, next.data)
      await rename(this.statePath, next.state)
      Object.assign(this, { modelId: fileId, path: next.data, statePath: next.state })
      await this.persist()
    })
    this.chain = run.catch(() => {})
    await run
  }

  /** Records the verified chunks within STATE_WRITE_MS (one state write for many chunks). */
  private persistSoon (): void {
    if (this.persistTimer !== undefined) return
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined
      const run = this.chain.then(async () => { await this.persist() })
      this.chain = run.catch(() => {})
    }, STATE_WRITE_MS)
    this.persistTimer.unref()
  }

  /** Writes the state now if a write is pending. */
  private async flush (): Promise<void> {
    if (this.persistTimer === undefined) return
    clearTimeout(this.persistTimer)
    this.persistTimer = undefined
    await this.persist()
  }

  private async persist (): Promise<void> {
    const json: StateJson = { v: 1, modelId: this.modelId, manifest: manifestToJson(this.manifest), verified: Buffer.from(this.bits).toString('base64') }
    const tmp = `${this.statePath}.tmp`
    await writeFile(tmp, JSON.stringify(json))
    await rename(tmp, this.statePath)
  }

  /**
   * Every chunk verified: checks the whole-file SHA-256 and links the file as `dest` (the node then holds
   * the model); the partial copy stays until `remove()`, so a stage loading from it meanwhile still finds
   * it. Throws `PartialCopyError` when incomplete or the hash differs. A `dest` already there is kept.
   */
  async finalize (dest: string): Promise<void> {
    await this.chain
    if (!this.complete) throw new PartialCopyError(`${this.modelId}: ${this.verifiedCount} of ${chunkCount(this.manifest)} chunks verified`)
    const h = createHash('sha256')
    const buf = Buffer.allocUnsafe(this.manifest.chunkBytes)
    for (let i = 0; i < chunkCount(this.manifest); i++) {
      const { start, end } = chunkSpan(this.manifest, i)
      const { bytesRead } = await this.fh.read(buf, 0, end - start, start)
      h.update(buf.subarray(0, bytesRead))
    }
    if (h.digest('hex') !== Buffer.from(this.manifest.sha256).toString('hex')) throw new PartialCopyError(`${this.modelId}: every chunk verified but the whole file's sha256 differs from the manifest's`)
    await this.fh.sync()
    await mkdir(dirname(dest), { recursive: true })
    await link(this.path, dest).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return
      // no hard links here (another file system): copy under a temporary name, then rename
      await copyFile(this.path, `${dest}.tmp`)
      await rename(`${dest}.tmp`, dest)
    })
  }

  /** Deletes the partial copy and its state file. */
  async remove (): Promise<void> {
    await this.close()
    await rm(this.path, { force: true })
    await rm(this.statePath, { force: true })
  }

  async close (): Promise<void> {
    await this.chain
    await this.flush().catch(() => {})
    await this.fh.close().catch(() => {})
  }
}

async function readState (path: string): Promise<StateJson | undefined> {
  try {
    const j = JSON.parse(await readFile(path, 'utf8')) as StateJson
    return j.v === 1 && typeof j.verified === 'string' && typeof j.manifest?.sha256 === 'string' ? j : undefined
  } catch {
    return undefined
  }
}
