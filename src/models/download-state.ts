import { readFile, rename, stat, writeFile } from 'node:fs/promises'
import { normalizeRanges } from './range-plan.js'
import type { ByteRange } from './range-plan.js'

/**
 * The small JSON file next to a partial download (`NAME.partial.json`): which byte ranges of `NAME.partial`
 * are written. A restarted process resumes from it; it is trusted only for the same size and checksum.
 */
export interface DownloadState {
  version: 1
  size: number
  /** expected checksum (`sha256:<hex>` or `gitsha1:<hex>`), or '' when none is known */
  checksum: string
  done: ByteRange[]
}

/** The ranges already on disk for this file, or [] when there is no usable state (missing, other file, short partial). */
export async function loadDoneRanges (statePath: string, partialPath: string, size: number, checksum: string): Promise<ByteRange[]> {
  try {
    const raw = JSON.parse(await readFile(statePath, 'utf8')) as Partial<DownloadState>
    if (raw.version !== 1 || raw.size !== size || raw.checksum !== checksum || !Array.isArray(raw.done)) return []
    const st = await stat(partialPath)
    if (!st.isFile() || st.size !== size) return []
    return normalizeRanges(raw.done.filter((r) => Array.isArray(r) && r.length === 2).map((r) => [Number(r[0]), Number(r[1])] as const), size)
  } catch {
    return []
  }
}

/** Writes the state atomically (temp file + rename): a kill never leaves a torn state file. */
export async function saveDoneRanges (statePath: string, size: number, checksum: string, done: readonly ByteRange[]): Promise<void> {
  const state: DownloadState = { version: 1, size, checksum, done: done.map((r) => [r[0], r[1]] as const) }
  const tmp = `${statePath}.tmp`
  await writeFile(tmp, JSON.stringify(state))
  await rename(tmp, statePath)
}
