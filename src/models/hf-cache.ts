import { readFile, readlink, realpath, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { Checksum } from './hash-file.js'

/** `models--ORG--REPO`: the folder of a model repository in the Hugging Face cache (huggingface_hub's layout). */
export function hfCacheRepoDir (cacheDir: string, repo: string): string {
  return join(cacheDir, `models--${repo.split('/').join('--')}`)
}

/** The commit `refs/<revision>` of the cache points at, if the cache knows the revision. */
export async function hfCacheRef (cacheDir: string, repo: string, revision: string): Promise<string | undefined> {
  if (/^[0-9a-f]{40}$/.test(revision)) return revision
  try {
    const commit = (await readFile(join(hfCacheRepoDir(cacheDir, repo), 'refs', revision), 'utf8')).trim()
    return /^[0-9a-f]{40}$/.test(commit) ? commit : undefined
  } catch { return undefined }
}

/**
 * The real path of `snapshots/COMMIT/PATH` when the cache holds that file with the expected size, and — when the
 * snapshot entry is the usual symlink to `blobs/<etag>` — with the expected checksum as its blob name. Used in
 * place (the store links to it); never modified.
 */
export async function findInHfCache (cacheDir: string, repo: string, commit: string, path: string, size: number, checksum: Checksum | undefined): Promise<string | undefined> {
  const entry = join(hfCacheRepoDir(cacheDir, repo), 'snapshots', commit, ...path.split('/'))
  try {
    const st = await stat(entry)
    if (!st.isFile() || st.size !== size) return undefined
    const link = await readlink(entry).catch(() => undefined)
    if (link !== undefined && checksum !== undefined) {
      const blob = basename(link)
      if (/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(blob) && blob !== checksum.hex) return undefined
    }
    return await realpath(entry)
  } catch { return undefined }
}
