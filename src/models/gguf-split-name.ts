import { ggufModelName, parseSplitGgufName } from '../shared/split-gguf-name.js'

/**
 * GGUF file names as llama.cpp's `-hf` reads them (common/download.cpp `get_gguf_split_info`). PURE.
 * Split naming itself is src/shared/split-gguf-name.ts.
 */
export interface GgufNameInfo {
  /** the path without `.gguf` and without the split suffix */
  prefix: string
  /** upper-cased trailing `[-.]TAG` of the prefix (`Q4_K_M`, `F16`), '' when none */
  tag: string
  /** 1-based part number; 1 for a single file */
  index: number
  /** number of parts; 1 for a single file */
  count: number
}

const TAG = /[-.]([A-Z0-9_]+)$/i

/** Split and quant information of a `.gguf` path; undefined for other files. */
export function ggufNameInfo (path: string): GgufNameInfo | undefined {
  if (!path.endsWith('.gguf')) return undefined
  const split = parseSplitGgufName(path)
  const prefix = split?.prefix ?? path.slice(0, -'.gguf'.length)
  const t = TAG.exec(prefix)
  return { prefix, tag: t === null ? '' : t[1]!.toUpperCase(), index: (split?.no ?? 0) + 1, count: split?.count ?? 1 }
}

/** Model id of a GGUF file path: the base name without `.gguf` and without `-0000k-of-0000N`. */
export function modelIdOfFileName (path: string): string {
  return ggufModelName(path.slice(path.lastIndexOf('/') + 1))
}

/** A sidecar, not a model: llama.cpp's `gguf_filename_is_model` (mmproj, imatrix, MTP / speculative heads). */
export function isModelGguf (path: string): boolean {
  if (!path.endsWith('.gguf')) return false
  const name = path.slice(path.lastIndexOf('/') + 1)
  return !['mmproj', 'imatrix', 'mtp-', 'eagle3-', 'dflash-', 'dspark-'].some((k) => name.includes(k))
}
