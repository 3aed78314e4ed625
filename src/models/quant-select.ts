import { NoGgufInRepoError, QuantNotFoundError } from '../shared/errors/pull-errors.js'
import { ggufNameInfo, isModelGguf } from './gguf-split-name.js'

/** One file of a Hub repository, from the tree API. */
export interface HubFile {
  /** path inside the repository */
  path: string
  size: number
  /** sha256 hex of the content (`lfs.oid`); undefined for files stored in git itself */
  sha256: string | undefined
  /** git blob id (`oid`) */
  oid: string
}

const DEFAULT_QUANTS = ['Q4_K_M', 'Q8_0']

function escapeRegex (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Part 1 (or the only file) of a model GGUF. */
function isFirstModelFile (f: HubFile): boolean {
  if (!isModelGguf(f.path)) return false
  const info = ggufNameInfo(f.path)
  return info !== undefined && (info.count <= 1 || info.index === 1)
}

/** Every part of the model `primary` belongs to (same prefix and part count), ordered by part number. */
export function splitParts (files: readonly HubFile[], primary: HubFile): HubFile[] {
  const p = ggufNameInfo(primary.path)
  if (p === undefined || p.count <= 1) return [primary]
  return files
    .filter((f) => { const i = ggufNameInfo(f.path); return i !== undefined && i.count === p.count && i.prefix === p.prefix })
    .sort((a, b) => ggufNameInfo(a.path)!.index - ggufNameInfo(b.path)!.index)
}

/** The quant tags of the repository's model GGUFs (upper case, first appearance order, no duplicates). */
export function availableQuants (files: readonly HubFile[]): string[] {
  const out: string[] = []
  for (const f of files) {
    if (!isFirstModelFile(f)) continue
    const tag = ggufNameInfo(f.path)!.tag
    if (tag !== '' && !out.includes(tag)) out.push(tag)
  }
  return out
}

/**
 * The files to download for `quant`, exactly as llama.cpp's `-hf` picks them (common/download.cpp
 * `find_best_model` + `get_split_files`): the first model GGUF (no mmproj / imatrix / MTP sidecar; of a split
 * model only part 1) whose path matches `QUANT[.-]` case-insensitively; without a quant Q4_K_M, then Q8_0,
 * then the first model GGUF. Returns all parts of a split model, ordered. PURE.
 */
export function selectModelFiles (repo: string, files: readonly HubFile[], quant: string | undefined): HubFile[] {
  const candidates = files.filter(isFirstModelFile)
  const tags = quant !== undefined ? [quant] : DEFAULT_QUANTS
  for (const t of tags) {
    const re = new RegExp(`${escapeRegex(t)}[.-]`, 'i')
    const hit = candidates.find((f) => re.test(f.path))
    if (hit !== undefined) return splitParts(files, hit)
  }
  if (candidates.length === 0) throw new NoGgufInRepoError(repo, files.map((f) => f.path))
  if (quant !== undefined) throw new QuantNotFoundError(repo, quant, availableQuants(files))
  return splitParts(files, candidates[0]!)
}
