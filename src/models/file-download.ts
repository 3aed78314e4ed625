import { open, readFile, rename, rm } from 'node:fs/promises'
import { AbortedError, ExoError } from '../shared/errors/exo-error.js'
import { ChecksumMismatchError, DownloadFailedError, DownloadInProgressError, DownloadSizeError, HubHttpError, HubUnreachableError } from '../shared/errors/pull-errors.js'
import { loadDoneRanges, saveDoneRanges } from './download-state.js'
import { hashFile } from './hash-file.js'
import { addRange, missingRanges, parseContentRange, pieceBytes, planPieces, rangeBytes } from './range-plan.js'
import type { Checksum } from './hash-file.js'
import type { ByteRange } from './range-plan.js'
import type { FileHandle } from 'node:fs/promises'

/** Opens the bytes `range` of a file (a `Range` request); called again — re-resolving signed URLs — on every retry. */
export type OpenRange = (range: ByteRange, signal: AbortSignal) => Promise<Response>

export interface DownloadTarget {
  /** name for messages */
  name: string
  size: number
  /** what the bytes must hash to; undefined = size check only */
  checksum: Checksum | undefined
  /** where the verified file goes (atomic rename); nothing is ever written under this name before that */
  finalPath: string
  /** the partial file; its state file is `${partialPath}.json` */
  partialPath: string
}

export interface DownloadFileOptions {
  signal: AbortSignal
  /** parallel range requests for a large file. Default 4 */
  parallel?: number
  /** below this a file is one request; also the smallest piece. Default 16 MiB */
  minPartBytes?: number
  /** failed attempts in a row (no byte received) before giving up on a piece. Default 5 */
  maxAttempts?: number
  /** a request that delivers no byte for this long is dropped and retried. Default 30 s */
  stallMs?: number
  /** bytes on disk so far, after each write (and once at the start, resumed bytes included) */
  onProgress?: (completed: number, total: number) => void
  /** all bytes are there; hashing starts */
  onVerify?: () => void
}

/** A piece still to fetch, and how many attempts in a row failed without a byte. */
interface Piece { range: ByteRange, failures: number }

const RETRY_BASE_MS = 200
const SAVE_EVERY_MS = 200
const STALL_MS = 30_000

function retryable (err: unknown): boolean {
  if (err instanceof HubUnreachableError) return true
  if (err instanceof HubHttpError) return err.status >= 500 || err.status === 403 || err.status === 408 || err.status === 429
  return !(err instanceof ExoError) // network errors: fetch TypeError, socket resets, body stream errors
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const t = setTimeout(done, ms)
    function done (): void { clearTimeout(t); signal.removeEventListener('abort', done); resolve() }
    signal.addEventListener('abort', done, { once: true })
  })
}

/**
 * Downloads one file resumably: pieces of the missing ranges in parallel into `partialPath` (a full-size file),
 * the written ranges in a state file (a restarted process goes on from there); a server that answers 200 to a
 * Range restarts the file from 0 with that answer; then the checksum is verified and the file renamed into place.
 * On abort or failure the partial and its state stay for the next attempt — except a checksum mismatch, which
 * deletes both. Returns the bytes received in this call.
 */
export async function downloadFile (target: DownloadTarget, openRange: OpenRange, options: DownloadFileOptions): Promise<number> {
  const lockPath = `${target.partialPath}.lock`
  await takeLock(lockPath, target.name)
  try {
    return await downloadLocked(target, openRange, options)
  } finally {
    await rm(lockPath, { force: true })
  }
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/** `NAME.partial.lock` holds the pid of the one pull writing the partial; a dead holder's lock is taken over. */
async function takeLock (lockPath: string, name: string, retry = true): Promise<void> {
  try {
    const fh = await open(lockPath, 'wx')
    await fh.writeFile(String(process.pid))
    await fh.close()
    return
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  const pid = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim())
  if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new DownloadInProgressError(name, pid)
  if (!retry) throw new DownloadInProgressError(name, pid)
  await rm(lockPath, { force: true })
  await takeLock(lockPath, name, false)
}

async function downloadLocked (target: DownloadTarget, openRange: OpenRange, options: DownloadFileOptions): Promise<number> {
  const { size, partialPath, name } = target
  const statePath = `${partialPath}.json`
  const checksumKey = target.checksum === undefined ? '' : `${target.checksum.kind}:${target.checksum.hex}`
  const maxAttempts = options.maxAttempts ?? 5
  let done = await loadDoneRanges(statePath, partialPath, size, checksumKey)
  const fh = await open(partialPath, done.length > 0 ? 'r+' : 'w')
  let received = 0
  let lastSave = 0
  let saving = Promise.resolve()
  const save = (force: boolean): void => {
    if (!force && Date.now() - lastSave < SAVE_EVERY_MS) return
    lastSave = Date.now()
    const snapshot = done
    saving = saving.then(async () => { await saveDoneRanges(statePath, size, checksumKey, snapshot) }).catch(() => {})
  }
  try {
    if (done.length === 0) await fh.truncate(size)
    options.onProgress?.(rangeBytes(done), size)
    const write = async (chunk: Uint8Array, pos: number): Promise<void> => {
      await fh.write(chunk, 0, chunk.length, pos)
      done = addRange(done, [pos, pos + chunk.length])
      received += chunk.length
      options.onProgress?.(rangeBytes(done), size)
      save(false)
    }
    for (let fullRestarts = 0; missingRanges(size, done).length > 0; fullRestarts++) {
      if (fullRestarts > maxAttempts) throw new DownloadFailedError(name, `the server ignored Range ${fullRestarts} times and the connection broke each time`)
      const full = await fetchPieces(target, done, openRange, write, options, maxAttempts)
      if (full !== undefined) {
        // the server ignores Range: this answer is the whole file, from byte 0
        done = []
        options.onProgress?.(0, size)
        await streamInto(full, [0, size], write, name).catch((err: unknown) => {
          if (options.signal.aborted) throw new AbortedError('download aborted', { cause: options.signal.reason })
          if (!retryable(err)) throw err
        })
      }
    }
    await fh.sync()
  } finally {
    save(true)
    await saving
    await fh.close()
  }
  options.onVerify?.()
  if (target.checksum !== undefined) {
    const actual = await hashFile(partialPath, target.checksum.kind, size, options.signal)
    if (actual !== target.checksum.hex) {
      await rm(partialPath, { force: true })
      await rm(statePath, { force: true })
      throw new ChecksumMismatchError(name, target.checksum.hex, actual)
    }
  }
  await rename(partialPath, target.finalPath)
  await rm(statePath, { force: true })
  return received
}

/** Writes a 206 (or full 200) body at `range[0]…`; throws when the body ends before `range[1]`. */
async function streamInto (res: Response, range: ByteRange, write: (c: Uint8Array, pos: number) => Promise<void>, name: string, piece?: Piece): Promise<void> {
  let pos = range[0]
  if (res.body === null) throw new DownloadFailedError(name, 'empty response body')
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const n = Math.min(chunk.length, range[1] - pos)
    if (n > 0) {
      await write(n === chunk.length ? chunk : chunk.subarray(0, n), pos)
      pos += n
      if (piece !== undefined) { piece.range = [pos, range[1]]; piece.failures = 0 }
    }
    if (pos >= range[1]) break
  }
  if (pos < range[1]) throw new Error(`connection closed after ${pos - range[0]} of ${range[1] - range[0]} bytes`)
}

/**
 * One round of parallel piece workers over the missing ranges. Returns the 200 response when the server ignored a
 * Range (the caller restarts the file from it), undefined when every piece is written.
 */
async function fetchPieces (target: DownloadTarget, done: readonly ByteRange[], openRange: OpenRange,
  write: (c: Uint8Array, pos: number) => Promise<void>, options: DownloadFileOptions, maxAttempts: number): Promise<Response | undefined> {
  const { size, name } = target
  const parallel = Math.max(1, options.parallel ?? 4)
  const queue: Piece[] = planPieces(missingRanges(size, done), pieceBytes(size, parallel, options.minPartBytes ?? 16 * 2 ** 20)).map((range) => ({ range, failures: 0 }))
  // each request has its own controller: ending the round must not abort a 200 answer the caller goes on with
  const round = new AbortController()
  const signal = AbortSignal.any([options.signal, round.signal])
  const inFlight = new Set<AbortController>()
  const endRound = (keep?: AbortController): void => {
    round.abort()
    for (const c of inFlight) if (c !== keep) c.abort()
  }
  let full: Response | undefined
  let fatal: unknown
  const fail = (err: unknown): void => { fatal ??= err; endRound() }
  const worker = async (): Promise<void> => {
    for (let piece = queue.shift(); piece !== undefined && !signal.aborted; piece = signal.aborted ? undefined : queue.shift()) {
      const ctl = new AbortController()
      inFlight.add(ctl)
      // stall detection: no byte (or no answer) for stallMs drops this request; the piece is retried
      let stall: NodeJS.Timeout | undefined
      const armStall = (): void => {
        clearTimeout(stall)
        stall = setTimeout(() => { ctl.abort(new Error(`no data for ${options.stallMs ?? STALL_MS} ms`)) }, options.stallMs ?? STALL_MS)
      }
      armStall()
      try {
        const res = await openRange(piece.range, AbortSignal.any([options.signal, ctl.signal]))
        if (res.status === 200) {
          if (full === undefined && !signal.aborted) { full = res; endRound(ctl) } else await res.body?.cancel().catch(() => {})
          return
        }
        if (res.status === 416) {
          await res.body?.cancel().catch(() => {})
          throw new DownloadSizeError(name, `the server has fewer bytes than the ${size} it announced (HTTP 416 for bytes ${piece.range[0]}-${piece.range[1] - 1})`)
        }
        if (res.status !== 206) {
          await res.body?.cancel().catch(() => {})
          throw new HubHttpError(res.url, res.status, `for Range bytes=${piece.range[0]}-${piece.range[1] - 1}`)
        }
        const cr = parseContentRange(res.headers.get('content-range'))
        if (cr === undefined || cr.start !== piece.range[0] || (cr.total !== undefined && cr.total !== size)) {
          await res.body?.cancel().catch(() => {})
          throw new DownloadSizeError(name, `the server answered Content-Range ${res.headers.get('content-range') ?? '(none)'} for bytes ${piece.range[0]}-${piece.range[1] - 1} of ${size}`)
        }
        await streamInto(res, piece.range, async (c, pos) => { armStall(); await write(c, pos) }, name, piece)
      } catch (err) {
        if (signal.aborted) return
        if (!retryable(err)) { fail(err); return }
        piece.failures++
        if (piece.failures >= maxAttempts) { fail(new DownloadFailedError(name, `${piece.failures} attempts in a row failed (${(err as Error).message})`, { cause: err })); return }
        queue.unshift(piece)
        await sleep(Math.min(5000, RETRY_BASE_MS * 2 ** (piece.failures - 1)), signal)
      } finally {
        clearTimeout(stall)
        inFlight.delete(ctl)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, Math.max(1, queue.length)) }, worker))
  if (fatal !== undefined) throw fatal
  if (options.signal.aborted) throw new AbortedError('download aborted', { cause: options.signal.reason })
  return full
}
