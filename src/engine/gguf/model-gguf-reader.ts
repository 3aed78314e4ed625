import { statSync } from 'node:fs'
import {
  InvalidGgufError, InvalidSplitNameError, NotFirstSplitPartError, NotGgufError, SplitPartMismatchError, SplitPartMissingError,
  SplitPartTruncatedError, TruncatedGgufError
} from '../../shared/errors/engine-errors.js'
import { parseSplitGgufName, splitGgufPath } from '../../shared/split-gguf-name.js'
import { readGguf } from './gguf-reader.js'
import type { GgufFile, GgufTensorInfo } from './gguf-reader.js'

/** One file of a model: the whole model, or one part of a split model. */
export interface GgufPart {
  path: string
  fileBytes: number
  /** this part's own data offset (each part is aligned on its own) */
  dataOffset: number
  tensorCount: number
}

/**
 * A model's GGUF header: the first file's metadata and version, the tensors of every part (each
 * `GgufTensorInfo.path` / `fileOffset` names the part holding it), `fileBytes` of all parts together.
 * `path` and `dataOffset` are the first part's.
 */
export interface ModelGguf extends GgufFile {
  /** the model's files in order: one for a single-file model, `split.count` for a split model */
  parts: GgufPart[]
}

const KEY_NO = 'split.no'
const KEY_COUNT = 'split.count'
const KEY_TENSORS = 'split.tensors.count'

function intKey (f: GgufFile, key: string, min: number, max: number): number | undefined {
  const v = f.metadata.get(key)
  if (v === undefined) return undefined
  const n = typeof v === 'bigint' ? Number(v) : v
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new InvalidGgufError(`${f.path}: ${key} = ${String(v)} is not an integer in [${min}, ${max}]`)
  return n
}

/** The first tensor whose data runs past the end of its file, as a message, or undefined. */
function dataOverrun (f: GgufFile): string | undefined {
  for (const t of f.tensors.values()) {
    if (t.fileOffset + t.bytes > f.fileBytes) return `tensor '${t.name}' needs bytes up to ${t.fileOffset + t.bytes} but the file has ${f.fileBytes}`
  }
  return undefined
}

function asPart (f: GgufFile): GgufPart {
  return { path: f.path, fileBytes: f.fileBytes, dataOffset: f.dataOffset, tensorCount: f.tensors.size }
}

/** Reads part `no` of a split model, translating reader failures into errors that name the part. */
function readPart (path: string, no: number, count: number): GgufFile {
  let isFile = false
  try { isFile = statSync(path).isFile() } catch {}
  if (!isFile) throw new SplitPartMissingError(path, no, count)
  try {
    return readGguf(path, { checkData: false })
  } catch (err) {
    if (err instanceof TruncatedGgufError) throw new SplitPartTruncatedError(path, err.message, { cause: err })
    if (err instanceof NotGgufError || err instanceof InvalidGgufError) throw new SplitPartMismatchError(path, err.message, { cause: err })
    throw err
  }
}

/**
 * Reads the GGUF header of a model given by its file — or, for a split model, by its first part: then the
 * other parts are found by llama.cpp's naming (`<prefix>-NNNNN-of-MMMMM.gguf` beside it), each part's
 * header is read and checked (`split.no`, `split.count`, `split.tensors.count`, tensor data within the file)
 * and the tensor tables are merged. Like llama.cpp, only the first part's metadata is used. No native code;
 * reads headers only.
 */
export function readModelGguf (path: string): ModelGguf {
  const first = readGguf(path, { checkData: false })
  const count = intKey(first, KEY_COUNT, 0, 65535) ?? 0
  if (count <= 1) {
    // llama.cpp treats split.count 0 / 1 as a single file
    const overrun = dataOverrun(first)
    if (overrun !== undefined) throw new TruncatedGgufError(`${path}: ${overrun}`)
    return { ...first, parts: [asPart(first)] }
  }
  const no = intKey(first, KEY_NO, 0, 65535)
  if (no === undefined) throw new InvalidGgufError(`${path}: ${KEY_COUNT} is ${count} but ${KEY_NO} is missing`)
  if (no !== 0) throw new NotFirstSplitPartError(path, no, count)
  const name = parseSplitGgufName(path)
  if (name === undefined || name.no !== 0 || name.count !== count) throw new InvalidSplitNameError(path, count)
  const nTensors = intKey(first, KEY_TENSORS, 0, 0x7fffffff)
  if (nTensors === undefined) throw new InvalidGgufError(`${path}: split model without ${KEY_TENSORS}`)

  const files: GgufFile[] = [first]
  for (let i = 1; i < count; i++) files.push(readPart(splitGgufPath(name.prefix, i, count), i, count))
  const tensors = new Map<string, GgufTensorInfo>()
  let fileBytes = 0
  for (const [i, f] of files.entries()) {
    const wrap = (why: string): Error => new SplitPartMismatchError(f.path, why)
    let partNo: number | undefined, partCount: number | undefined, partTensors: number | undefined
    try {
      partNo = intKey(f, KEY_NO, 0, 65535)
      partCount = intKey(f, KEY_COUNT, 0, 65535)
      partTensors = intKey(f, KEY_TENSORS, 0, 0x7fffffff)
    } catch (err) {
      throw new SplitPartMismatchError(f.path, (err as Error).message, { cause: err })
    }
    if (partNo !== i) throw wrap(`${KEY_NO} is ${partNo ?? 'missing'}, expected ${i}`)
    if (partCount !== count) throw wrap(`${KEY_COUNT} is ${partCount ?? 'missing'}, expected ${count} (from ${path})`)
    if (partTensors !== nTensors) throw wrap(`${KEY_TENSORS} is ${partTensors ?? 'missing'}, expected ${nTensors} (from ${path})`)
    const overrun = dataOverrun(f)
    if (overrun !== undefined) throw new SplitPartTruncatedError(f.path, overrun)
    for (const [tname, t] of f.tensors) {
      if (tensors.has(tname)) throw wrap(`tensor '${tname}' is also in ${tensors.get(tname)!.path}`)
      tensors.set(tname, t)
    }
    fileBytes += f.fileBytes
  }
  if (tensors.size !== nTensors) {
    throw new SplitPartMismatchError(path, `${KEY_TENSORS} is ${nTensors} but the ${count} parts hold ${tensors.size} tensors`)
  }
  return { ...first, fileBytes, tensors, parts: files.map(asPart) }
}
