/**
 * File names of split GGUF models, as llama.cpp names them (`llama_split_path` / `llama_split_prefix` in
 * src/llama.cpp, written by tools/gguf-split): `<prefix>-%05d-of-%05d.gguf` with the 1-based part number.
 * Part `no` here is 0-based, like the `split.no` key inside each part. Pure string functions, no I/O.
 */

/** One part of a split model, parsed from its path. */
export interface SplitGgufName {
  /** the path without `-NNNNN-of-MMMMM.gguf` (directories kept): llama.cpp's split prefix */
  prefix: string
  /** 0-based part number (file name number - 1), as `split.no` */
  no: number
  /** number of parts, as `split.count` */
  count: number
}

/** split.count and split.no are u16 in the GGUF, and %05d fits every u16 */
export const MAX_SPLIT_COUNT = 65535
const SPLIT_RE = /^(.+)-(\d{5})-of-(\d{5})\.gguf$/

/** `path` parsed as a split part, or undefined when it does not follow llama.cpp's naming (or numbers are out of range). */
export function parseSplitGgufName (path: string): SplitGgufName | undefined {
  const m = SPLIT_RE.exec(path)
  if (m === null) return undefined
  const part = Number(m[2])
  const count = Number(m[3])
  if (count < 1 || count > MAX_SPLIT_COUNT || part < 1 || part > count) return undefined
  return { prefix: m[1]!, no: part - 1, count }
}

/** The path of part `no` (0-based) of `count`: llama_split_path(prefix, no, count). */
export function splitGgufPath (prefix: string, no: number, count: number): string {
  if (!Number.isInteger(count) || count < 1 || count > MAX_SPLIT_COUNT) throw new RangeError(`split count ${count} is not an integer in [1, ${MAX_SPLIT_COUNT}]`)
  if (!Number.isInteger(no) || no < 0 || no >= count) throw new RangeError(`split part ${no} is not an integer in [0, ${count})`)
  const pad = (n: number): string => String(n).padStart(5, '0')
  return `${prefix}-${pad(no + 1)}-of-${pad(count)}.gguf`
}

/** All `count` part paths of the split model whose prefix is `prefix`, in order. */
export function splitGgufPaths (prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, no) => splitGgufPath(prefix, no, count))
}

/**
 * The model name of a GGUF file name: without `.gguf` (any case) and, for a split part, without the
 * `-NNNNN-of-MMMMM` suffix (`Qwen3-235B-Q4_K_M-00001-of-00005.gguf` → `Qwen3-235B-Q4_K_M`).
 * Give it a base name; directories are not stripped.
 */
export function ggufModelName (fileName: string): string {
  const split = parseSplitGgufName(fileName)
  if (split !== undefined) return split.prefix
  return fileName.replace(/\.gguf$/i, '')
}
