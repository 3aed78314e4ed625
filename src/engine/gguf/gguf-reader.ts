import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { InvalidGgufError, NotGgufError, TruncatedGgufError } from '../../shared/errors/engine-errors.js'
import { GGML_TYPE_TRAITS, SUPPORTED_WEIGHT_TYPES } from './ggml-types.js'

/** A metadata value. Large arrays (e.g. the vocabulary) keep only their element type and length. */
export type GgufValue = number | bigint | boolean | string | GgufArray
export interface GgufArray { arrayType: number, length: number, values?: Array<number | bigint | boolean | string> }

export interface GgufTensorInfo {
  name: string
  /** ggml order: ne[0] is the contiguous dimension */
  ne: number[]
  type: number
  /** the file holding the data (for a split model: the part that holds this tensor) */
  path: string
  /** absolute byte offset of the data in that file */
  fileOffset: number
  bytes: number
}

export interface GgufFile {
  path: string
  version: number
  fileBytes: number
  metadata: Map<string, GgufValue>
  tensors: Map<string, GgufTensorInfo>
  dataOffset: number
}

const MAGIC = 0x46554747 // 'GGUF' little-endian
const MAX_STRING = 1 << 24
const MAX_KEEP_ARRAY = 4096
const MAX_COUNT = 1 << 24
enum V { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 }
const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 }

/** Sequential reader over a file descriptor with a growable window (headers can be tens of MB). */
class Cursor {
  private buf = Buffer.alloc(0)
  private bufStart = 0
  pos = 0
  constructor (private readonly fd: number, readonly size: number, private readonly path: string) {}

  private need (n: number, what: string): number {
    if (this.pos + n > this.size) throw new TruncatedGgufError(`${this.path}: file ends at byte ${this.size} while reading ${what} at ${this.pos}`)
    const end = this.pos + n
    if (this.pos < this.bufStart || end > this.bufStart + this.buf.length) {
      const len = Math.min(this.size - this.pos, Math.max(n, 1 << 20))
      this.buf = Buffer.alloc(len)
      readSync(this.fd, this.buf, 0, len, this.pos)
      this.bufStart = this.pos
    }
    const off = this.pos - this.bufStart
    this.pos = end
    return off
  }

  u32 (what: string): number { const o = this.need(4, what); return this.buf.readUInt32LE(o) }
  u64 (what: string): number {
    const o = this.need(8, what)
    const v = this.buf.readBigUInt64LE(o)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidGgufError(`${this.path}: ${what} ${v} is too large`)
    return Number(v)
  }

  str (what: string): string {
    const n = this.u64(`${what} length`)
    if (n > MAX_STRING) throw new InvalidGgufError(`${this.path}: ${what} has length ${n}`)
    const o = this.need(n, what)
    return this.buf.toString('utf8', o, o + n)
  }

  scalar (type: number, what: string): number | bigint | boolean | string {
    if (type === V.STRING) return this.str(what)
    const size = SCALAR_BYTES[type]
    if (size === undefined) throw new InvalidGgufError(`${this.path}: ${what} has unknown value type ${type}`)
    const o = this.need(size, what)
    const b = this.buf
    switch (type) {
      case V.U8: return b.readUInt8(o)
      case V.I8: return b.readInt8(o)
      case V.U16: return b.readUInt16LE(o)
      case V.I16: return b.readInt16LE(o)
      case V.U32: return b.readUInt32LE(o)
      case V.I32: return b.readInt32LE(o)
      case V.F32: return b.readFloatLE(o)
      case V.BOOL: return b.readUInt8(o) !== 0
      case V.U64: return b.readBigUInt64LE(o)
      case V.I64: return b.readBigInt64LE(o)
      default: return b.readDoubleLE(o)
    }
  }

  skip (n: number, what: string): void {
    if (this.pos + n > this.size) throw new TruncatedGgufError(`${this.path}: file ends at byte ${this.size} while reading ${what}`)
    this.pos += n
  }
}

function readValue (c: Cursor, type: number, what: string): GgufValue {
  if (type !== V.ARRAY) return c.scalar(type, what)
  const arrayType = c.u32(`${what} array type`)
  const length = c.u64(`${what} array length`)
  if (arrayType === V.ARRAY) throw new InvalidGgufError(`${what}: nested arrays are not supported`)
  if (length > MAX_COUNT * 16) throw new InvalidGgufError(`${what}: array length ${length}`)
  if (length <= MAX_KEEP_ARRAY) {
    const values: Array<number | bigint | boolean | string> = []
    for (let i = 0; i < length; i++) values.push(c.scalar(arrayType, what))
    return { arrayType, length, values }
  }
  if (arrayType === V.STRING) {
    for (let i = 0; i < length; i++) c.skip(c.u64(`${what} element length`), what)
  } else {
    const size = SCALAR_BYTES[arrayType]
    if (size === undefined) throw new InvalidGgufError(`${what}: unknown array element type ${arrayType}`)
    c.skip(size * length, what)
  }
  return { arrayType, length }
}

/**
 * Parses and validates a GGUF file's header and tensor table in TypeScript (no native code).
 * `checkData: false` skips the check that tensor data lies inside the file (for writers that append it).
 */
export function readGguf (path: string, { checkData = true }: { checkData?: boolean } = {}): GgufFile {
  let fd: number
  try { fd = openSync(path, 'r') } catch (err) { throw new NotGgufError(`cannot open ${path}: ${(err as Error).message}`, { cause: err }) }
  try {
    const size = fstatSync(fd).size
    const c = new Cursor(fd, size, path)
    if (size < 4 || c.u32('magic') !== MAGIC) throw new NotGgufError(`${path} is not a GGUF file (bad magic)`)
    const version = c.u32('version')
    if (version !== 2 && version !== 3) throw new NotGgufError(`${path}: unsupported GGUF version ${version}`)
    const nTensors = c.u64('tensor count')
    const nKv = c.u64('metadata count')
    if (nTensors > MAX_COUNT || nKv > MAX_COUNT) throw new InvalidGgufError(`${path}: implausible counts (${nTensors} tensors, ${nKv} keys)`)
    const metadata = new Map<string, GgufValue>()
    for (let i = 0; i < nKv; i++) {
      const key = c.str('metadata key')
      const type = c.u32(`type of ${key}`)
      metadata.set(key, readValue(c, type, key))
    }
    const infos: Array<Omit<GgufTensorInfo, 'fileOffset' | 'path'> & { rel: number }> = []
    for (let i = 0; i < nTensors; i++) {
      const name = c.str('tensor name')
      const nDims = c.u32(`dims of ${name}`)
      if (nDims < 1 || nDims > 4) throw new InvalidGgufError(`${path}: tensor '${name}' has ${nDims} dimensions`)
      const ne: number[] = []
      for (let d = 0; d < nDims; d++) ne.push(c.u64(`shape of ${name}`))
      const type = c.u32(`type of ${name}`)
      const rel = c.u64(`offset of ${name}`)
      const traits = GGML_TYPE_TRAITS.get(type)
      let bytes = 0
      if (traits !== undefined) {
        if (ne[0]! % traits.blockSize !== 0) throw new InvalidGgufError(`${path}: tensor '${name}' row of ${ne[0]} is not a multiple of block ${traits.blockSize}`)
        bytes = ne.reduce((a, b) => a * b, 1) / traits.blockSize * traits.typeSize
      }
      infos.push({ name, ne, type, rel, bytes })
    }
    const alignRaw = metadata.get('general.alignment')
    const alignment = typeof alignRaw === 'number' ? alignRaw : 32
    if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) throw new InvalidGgufError(`${path}: bad general.alignment ${String(alignRaw)}`)
    const dataOffset = Math.ceil(c.pos / alignment) * alignment
    const tensors = new Map<string, GgufTensorInfo>()
    // ggml (gguf_init_from_file) requires each tensor at the running sum of the padded sizes of the ones
    // before it; checked when every tensor has a weight type the engine runs (sizes certain), else at least the
    // alignment — a tensor of another type is then refused by name (UnsupportedTensorTypeError) in describeModel
    const allKnown = infos.every((t) => SUPPORTED_WEIGHT_TYPES.has(t.type))
    let expected = 0
    for (const t of infos) {
      if (tensors.has(t.name)) throw new InvalidGgufError(`${path}: duplicate tensor '${t.name}'`)
      if (t.rel % alignment !== 0) throw new InvalidGgufError(`${path}: tensor '${t.name}' has offset ${t.rel}, not a multiple of the alignment ${alignment}`)
      if (allKnown && t.rel !== expected) throw new InvalidGgufError(`${path}: tensor '${t.name}' has offset ${t.rel}, expected ${expected} (tensors follow each other, each padded to ${alignment} bytes)`)
      expected += Math.ceil(t.bytes / alignment) * alignment
      const fileOffset = dataOffset + t.rel
      if (checkData && fileOffset + t.bytes > size) {
        throw new TruncatedGgufError(`${path}: tensor '${t.name}' needs bytes up to ${fileOffset + t.bytes} but the file has ${size}`)
      }
      tensors.set(t.name, { name: t.name, ne: t.ne, type: t.type, path, fileOffset, bytes: t.bytes })
    }
    return { path, version, fileBytes: size, metadata, tensors, dataOffset }
  } finally {
    closeSync(fd)
  }
}
