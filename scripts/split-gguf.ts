#!/usr/bin/env -S node --import tsx
/**
 * Rewrites a GGUF as split parts `<prefix>-NNNNN-of-MMMMM.gguf`, byte for byte as llama.cpp's
 * tools/gguf-split does (`--split`): every key-value pair of the input goes into the first part (any
 * `split.*` keys of the input dropped), then every part gets `split.no` (u16, 0-based), `split.tensors.count`
 * (i32, all parts) and `split.count` (u16) — in that order, as gguf_set_val re-appends split.count —, the
 * tensors in input order, each part a GGUF v3 with its own tensor table and data section (offsets padded
 * to 32 bytes; tensor data zero-padded to 32). Pure TypeScript, no native code.
 *
 *   node --import tsx scripts/split-gguf.ts --in model.gguf --out /models/model (--parts 3 | --max-tensors 128 | --max-size 500M) [--no-tensor-first-split]
 *
 * `--parts N` spreads the tensors evenly over exactly N parts (in order); `--max-tensors` and `--max-size`
 * are gguf-split's `--split-max-tensors` / `--split-max-size`. One deviation: an input with a
 * `general.alignment` other than 32 keeps it in the first part (gguf-split writes such a part with 32-byte
 * offsets under a key that says otherwise).
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { readGguf } from '../src/engine/gguf/gguf-reader.js'
import { splitGgufPath } from '../src/shared/split-gguf-name.js'
import type { GgufTensorInfo } from '../src/engine/gguf/gguf-reader.js'

export interface SplitGgufOptions {
  input: string
  /** output path prefix: part i is `${outPrefix}-0000i-of-0000N.gguf` */
  outPrefix: string
  /** exactly this many parts, tensors spread evenly in order */
  parts?: number
  /** gguf-split --split-max-tensors (its default: 128) */
  maxTensors?: number
  /** gguf-split --split-max-size, in bytes */
  maxBytes?: number
  /** gguf-split --no-tensor-first-split: the first part holds metadata only */
  noTensorFirstSplit?: boolean
}

const GGUF_DEFAULT_ALIGNMENT = 32
const GGUF_TYPE_U16 = 2
const GGUF_TYPE_I32 = 5
const GGUF_TYPE_STRING = 8
const GGUF_TYPE_ARRAY = 9
const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 }
const pad = (n: number, a: number): number => Math.ceil(n / a) * a

/** Byte spans of the key-value pairs of a GGUF header (`buf` = the header bytes), in file order. */
function kvSpans (buf: Buffer): Array<{ key: string, start: number, end: number }> {
  let pos = 16
  const nKv = Number(buf.readBigUInt64LE(16))
  pos = 24
  const str = (): string => { const n = Number(buf.readBigUInt64LE(pos)); pos += 8; const s = buf.toString('utf8', pos, pos + n); pos += n; return s }
  const skipValue = (type: number): void => {
    if (type === GGUF_TYPE_STRING) { pos += 8 + Number(buf.readBigUInt64LE(pos)); return }
    if (type === GGUF_TYPE_ARRAY) {
      const et = buf.readUInt32LE(pos)
      const n = Number(buf.readBigUInt64LE(pos + 4))
      pos += 12
      if (et === GGUF_TYPE_STRING) { for (let i = 0; i < n; i++) skipValue(et) } else {
        const size = SCALAR_BYTES[et]
        if (size === undefined) throw new Error(`array element type ${et} is not supported`)
        pos += n * size
      }
      return
    }
    const size = SCALAR_BYTES[type]
    if (size === undefined) throw new Error(`value type ${type} is not supported`)
    pos += size
  }
  const out: Array<{ key: string, start: number, end: number }> = []
  for (let i = 0; i < nKv; i++) {
    const start = pos
    const key = str()
    skipValue(buf.readUInt32LE((pos += 4) - 4))
    out.push({ key, start, end: pos })
  }
  return out
}

/** GGUF bytes of a string / u16 / i32 key-value pair. */
function kvBytes (key: string, type: number, value: number): Buffer {
  const k = Buffer.from(key, 'utf8')
  const b = Buffer.alloc(8 + k.length + 4 + (type === GGUF_TYPE_U16 ? 2 : 4))
  b.writeBigUInt64LE(BigInt(k.length), 0)
  k.copy(b, 8)
  b.writeUInt32LE(type, 8 + k.length)
  if (type === GGUF_TYPE_U16) b.writeUInt16LE(value, 12 + k.length)
  else b.writeInt32LE(value, 12 + k.length)
  return b
}

/** ggml_n_dims: trailing dimensions of 1 are not written (at least one dimension). */
function nDims (ne: number[]): number {
  let n = ne.length
  while (n > 1 && ne[n - 1] === 1) n--
  return n
}

function tensorInfoBytes (t: GgufTensorInfo, offset: number): Buffer {
  const name = Buffer.from(t.name, 'utf8')
  const dims = nDims(t.ne)
  const b = Buffer.alloc(8 + name.length + 4 + 8 * dims + 4 + 8)
  let p = b.writeBigUInt64LE(BigInt(name.length), 0)
  p += name.copy(b, p)
  p = b.writeUInt32LE(dims, p)
  for (let j = 0; j < dims; j++) p = b.writeBigInt64LE(BigInt(t.ne[j]!), p)
  p = b.writeUInt32LE(t.type, p)
  b.writeBigUInt64LE(BigInt(offset), p)
  return b
}

/** Which part each tensor goes to: gguf-split's split_strategy, or an even spread over exactly `parts`. */
export function assignParts (tensors: GgufTensorInfo[], o: Omit<SplitGgufOptions, 'input' | 'outPrefix'>): GgufTensorInfo[][] {
  const n = tensors.length
  const out: GgufTensorInfo[][] = [[]]
  if (o.noTensorFirstSplit === true) out.push([])
  if (o.parts !== undefined) {
    const k = o.parts - out.length + 1
    if (!Number.isInteger(o.parts) || k < 1 || k > n) throw new Error(`cannot spread ${n} tensors over ${o.parts} parts`)
    out.pop()
    for (let i = 0; i < k; i++) out.push(tensors.slice(Math.floor(i * n / k), Math.floor((i + 1) * n / k)))
    return out
  }
  let size = 0
  tensors.forEach((t, i) => {
    const bytes = pad(t.bytes, GGUF_DEFAULT_ALIGNMENT)
    const split = o.maxBytes !== undefined ? size + bytes > o.maxBytes : i > 0 && i % (o.maxTensors ?? 128) === 0
    if (split) {
      if (out[out.length - 1]!.length === 0) throw new Error('one of the splits has 0 tensors: the size or tensor limit is too small')
      out.push([])
      size = bytes
    } else {
      size += bytes
    }
    out[out.length - 1]!.push(t)
  })
  return out
}

/** Writes the parts; returns their paths in order. */
export function splitGguf (o: SplitGgufOptions): string[] {
  const src = readGguf(o.input)
  const count = src.metadata.get('split.count')
  if (typeof count === 'number' && count > 1) throw new Error(`${o.input} is already part of a split model`)
  if (src.tensors.size > 0x7fffffff) throw new Error('too many tensors')
  const tensors = [...src.tensors.values()]
  for (const t of tensors) if (t.bytes === 0 && t.ne.every((d) => d > 0)) throw new Error(`tensor ${t.name} has a ggml type (${t.type}) of unknown size`)
  const groups = assignParts(tensors, o)
  if (groups.length > 65535) throw new Error(`${groups.length} parts: split.count is a u16`)
  const fin = openSync(o.input, 'r')
  const paths: string[] = []
  try {
    const header = Buffer.alloc(src.dataOffset)
    readSync(fin, header, 0, header.length, 0)
    const kvs = kvSpans(header).filter((kv) => !kv.key.startsWith('split.'))
    const alignment = typeof src.metadata.get('general.alignment') === 'number' ? src.metadata.get('general.alignment') as number : GGUF_DEFAULT_ALIGNMENT
    const chunk = Buffer.alloc(8 << 20)
    groups.forEach((group, i) => {
      const partAlign = i === 0 ? alignment : GGUF_DEFAULT_ALIGNMENT
      const kv: Buffer[] = i === 0 ? kvs.map((s) => header.subarray(s.start, s.end)) : []
      kv.push(kvBytes('split.no', GGUF_TYPE_U16, i), kvBytes('split.tensors.count', GGUF_TYPE_I32, tensors.length), kvBytes('split.count', GGUF_TYPE_U16, groups.length))
      let rel = 0
      const infos = group.map((t) => { const b = tensorInfoBytes(t, rel); rel += pad(t.bytes, partAlign); return b })
      const head = Buffer.alloc(24)
      head.write('GGUF', 0, 'latin1')
      head.writeUInt32LE(3, 4)
      head.writeBigInt64LE(BigInt(group.length), 8)
      head.writeBigInt64LE(BigInt(kv.length), 16)
      const meta = Buffer.concat([head, ...kv, ...infos])
      const path = splitGgufPath(o.outPrefix, i, groups.length)
      const fout = openSync(path, 'w')
      try {
        writeSync(fout, meta)
        writeSync(fout, Buffer.alloc(pad(meta.length, partAlign) - meta.length))
        for (const t of group) {
          for (let off = 0; off < t.bytes; off += chunk.length) {
            const n = Math.min(chunk.length, t.bytes - off)
            if (readSync(fin, chunk, 0, n, t.fileOffset + off) !== n) throw new Error(`short read of ${t.name}`)
            writeSync(fout, chunk, 0, n)
          }
          writeSync(fout, Buffer.alloc(pad(t.bytes, GGUF_DEFAULT_ALIGNMENT) - t.bytes))
        }
      } finally {
        closeSync(fout)
      }
      paths.push(path)
    })
  } finally {
    closeSync(fin)
  }
  return paths
}

/** gguf-split's size syntax: N followed by M (10^6 bytes) or G (10^9 bytes). */
function parseSize (s: string): number {
  const m = /^(\d+)([MG])$/.exec(s)
  if (m === null || Number(m[1]) <= 0) throw new Error(`--max-size expects a positive N followed by M or G, got '${s}'`)
  return Number(m[1]) * (m[2] === 'M' ? 1e6 : 1e9)
}

function main (): void {
  const { values } = parseArgs({
    options: {
      in: { type: 'string' }, out: { type: 'string' }, parts: { type: 'string' }, 'max-tensors': { type: 'string' },
      'max-size': { type: 'string' }, 'no-tensor-first-split': { type: 'boolean' }, help: { type: 'boolean' }
    }
  })
  if (values.help === true || values.in === undefined || values.out === undefined) {
    process.stdout.write('usage: split-gguf --in FILE.gguf --out PREFIX [--parts N | --max-tensors N | --max-size N(M|G)] [--no-tensor-first-split]\n')
    process.exit(values.help === true ? 0 : 2)
  }
  const paths = splitGguf({
    input: values.in,
    outPrefix: values.out,
    parts: values.parts === undefined ? undefined : Number.parseInt(values.parts, 10),
    maxTensors: values['max-tensors'] === undefined ? undefined : Number.parseInt(values['max-tensors'], 10),
    maxBytes: values['max-size'] === undefined ? undefined : parseSize(values['max-size']),
    noTensorFirstSplit: values['no-tensor-first-split'] === true
  })
  process.stdout.write(`wrote ${paths.length} parts: ${paths.join(', ')}\n`)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main()
