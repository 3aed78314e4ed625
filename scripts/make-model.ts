#!/usr/bin/env -S node --import tsx
/**
 * Writes a random-weight GGUF of any architecture in scripts/model-gen/ (default llama), shape and tensor type, with the vocabulary / tokenizer
 * metadata copied from a real GGUF (default: the 32000-token Llama 2 vocab of llama-2-tiny-random.gguf),
 * so node-llama-cpp loads and tokenizes it. Header through ggml's gguf writer, weights through ggml_quantize_chunk.
 *
 *   node --import tsx scripts/make-model.ts --out /tmp/m.gguf --layers 2 --embd 256 --heads 4 --kv-heads 2 --ff 512 --type q4_k
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { readGguf } from '../src/engine/gguf/gguf-reader.js'
import { GGML_TYPE_TRAITS, SUPPORTED_WEIGHT_TYPES, ggmlTypeByName, ggmlTypeName } from '../src/engine/gguf/ggml-types.js'
import { quantizeNeedsImatrix, quantizeRows, rowSize, writeGgufHeader } from '../src/engine/native/gguf-writer.js'
import { GENERATORS } from './model-gen/registry.js'
import { splitGguf } from './split-gguf.js'
import { splitGgufPath } from '../src/shared/split-gguf-name.js'
import type { GenOptions, GenTensor } from './model-gen/types.js'

/**
 * --type: every weight type of the pinned ggml CPU backend, by its ggml name (lower-case), with the
 * llama_ftype (include/llama.h) that llama.cpp's loader assigns a file whose weights are all of that type
 * (llama-model-loader.cpp; mxfp4: LLAMA_FTYPE_MOSTLY_MXFP4_MOE). Written as general.file_type.
 */
const FILE_TYPE = {
  f32: 0, f16: 1, bf16: 32, q4_0: 2, q4_1: 3, q5_0: 8, q5_1: 9, q8_0: 7,
  q2_k: 10, q3_k: 12, q4_k: 15, q5_k: 17, q6_k: 18,
  iq1_s: 24, iq1_m: 31, iq2_xxs: 19, iq2_xs: 20, iq2_s: 28, iq3_xxs: 23, iq3_s: 26, iq4_nl: 25, iq4_xs: 30,
  tq1_0: 36, tq2_0: 37, mxfp4: 38, nvfp4: 39, q1_0: 40, q2_0: 41
} as const
export type ModelType = keyof typeof FILE_TYPE
/** ggml type id of each --type (from the ggml type table) */
export const MODEL_TYPES = Object.fromEntries(Object.keys(FILE_TYPE).map((name) => {
  const id = ggmlTypeByName(name)
  if (id === undefined || !SUPPORTED_WEIGHT_TYPES.has(id)) throw new Error(`make-model: ggml has no CPU weight type ${name}`)
  return [name, id]
})) as Record<ModelType, number>

export interface MakeModelOptions {
  out: string
  layers: number
  embd: number
  heads: number
  kvHeads: number
  ff: number
  type: ModelType
  vocabFrom: string
  seed: number
  context: number
  /** `general.architecture` (default llama): any generator in scripts/model-gen/registry.ts */
  arch?: string
  /** architecture-specific options (`--opt key=value`), see each generator in scripts/model-gen/ */
  archOptions?: Record<string, number | boolean | string>
  /** attention head size (default embd / heads; written as attention.key_length) */
  headDim?: number
  /** llama 3 style rope_freqs.weight (per-dimension RoPE frequency divisors, f32 [head_dim / 2]) */
  ropeFreqs?: boolean
  /** no output.weight: the output projection reuses token_embd (tied embeddings) */
  tied?: boolean
  /** per-tensor types, llama-quantize's --tensor-type (first matching pattern wins), e.g. Q4_K_M's q6_K attn_v / ffn_down */
  tensorTypes?: ReadonlyArray<{ pattern: string, type: ModelType }>
  /** quantise layer 0 once and write the same bytes for every layer (fast generation of big bench models) */
  reuseLayers?: boolean
  /** tokenizer.chat_template (Jinja) to write, e.g. a model family's real template */
  chatTemplate?: string
  /** write N split parts `<out without .gguf>-0000i-of-0000N.gguf` (as llama.cpp's gguf-split) instead of `out` */
  split?: number
}

export const DEFAULTS: Omit<MakeModelOptions, 'out'> = {
  layers: 2, embd: 256, heads: 4, kvHeads: 2, ff: 512, type: 'q8_0',
  vocabFrom: 'test/fixtures/models/llama-2-tiny-random.gguf', seed: 1, context: 2048
}

/** Deterministic uniform floats in [-scale, scale) (mulberry32). */
function fillRandom (out: Float32Array, seed: number, scale: number): void {
  let a = seed >>> 0
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale
  }
}

/**
 * A deterministic stand-in for llama.cpp's importance matrix (mean squared activation per input column):
 * positive, uneven weights in [0.5, 2) so the IQ quantisers' weighted searches are exercised.
 */
function syntheticImatrix (n: number): Float32Array {
  const w = new Float32Array(n)
  for (let j = 0; j < n; j++) w[j] = 0.5 + 1.5 * (((j * 2654435761) >>> 0) % 1024) / 1024
  return w
}

function fillTensor (t: GenTensor, f32: Float32Array, seed: number): void {
  if (t.init === 'ones') f32.fill(1)
  else if (t.init === 'zeros') f32.fill(0)
  else if (t.init === 'rope-factors') f32.forEach((_, j) => { f32[j] = 1 + 7 * j / f32.length }) // rope factors 1…8
  else fillRandom(f32, seed, t.scale ?? 1)
}

export function makeModel (o: MakeModelOptions): void {
  const blk = GGML_TYPE_TRAITS.get(MODEL_TYPES[o.type])!.blockSize
  const arch = o.arch ?? 'llama'
  const gen = GENERATORS.get(arch)
  if (gen === undefined) throw new Error(`unknown --arch ${arch} (known: ${[...GENERATORS.keys()].join(', ')})`)
  if ((o.headDim === undefined && o.embd % o.heads !== 0) || o.heads % o.kvHeads !== 0) throw new Error(`embd ${o.embd}, heads ${o.heads}, kv heads ${o.kvHeads} are inconsistent`)
  const vocab = readGguf(o.vocabFrom)
  const tokens = vocab.metadata.get('tokenizer.ggml.tokens')
  if (typeof tokens !== 'object' || !('length' in tokens)) throw new Error(`${o.vocabFrom} has no tokenizer.ggml.tokens`)
  const g: GenOptions = {
    layers: o.layers, embd: o.embd, heads: o.heads, kvHeads: o.kvHeads, ff: o.ff, context: o.context,
    weightType: MODEL_TYPES[o.type], block: blk, headDim: o.headDim, ropeFreqs: o.ropeFreqs, tied: o.tied,
    arch: { ...o.archOptions, nVocab: tokens.length }
  }
  const specs = withTensorTypes(gen.tensors(g), MODEL_TYPES[o.type], o.tensorTypes ?? [])
  for (const t of specs) {
    const b = GGML_TYPE_TRAITS.get(t.type)!.blockSize
    if (t.ne[0]! % b !== 0) throw new Error(`${ggmlTypeName(t.type)} needs ${t.name}'s rows (${t.ne[0]}) to be a multiple of ${b}`)
  }
  const tmp = `${o.out}.tmp-${process.pid}`
  const a = (key: string): string => `${arch}.${key}`
  writeGgufHeader(tmp, o.vocabFrom, ['general.', 'llama.', `${arch}.`], {
    'general.architecture': { kind: 'str', value: arch },
    'general.name': { kind: 'str', value: `random-${arch}-${o.layers}x${o.embd}-${o.type}` },
    'general.file_type': { kind: 'u32', value: FILE_TYPE[o.type] },
    ...(o.chatTemplate !== undefined ? { 'tokenizer.chat_template': { kind: 'str' as const, value: o.chatTemplate } } : {}),
    ...gen.metadata(g, a)
  }, specs.map(({ name, ne, type }) => ({ name, ne, type })))
  // append tensor data at the offsets the header announces (read back with our own parser)
  const header = readGguf(tmp, { checkData: false })
  const fd = openSync(tmp, 'r+')
  const layer0 = new Map<string, Uint8Array>()
  try {
    specs.forEach((s, i) => {
      const info = header.tensors.get(s.name)!
      const suffix = s.name.replace(/^blk\.\d+\./, '')
      const reuse = o.reuseLayers === true && s.name.startsWith('blk.') ? layer0.get(suffix) : undefined
      if (reuse !== undefined) { writeSync(fd, reuse, 0, reuse.length, info.fileOffset); return }
      const nRows = s.ne.slice(1).reduce((a, b) => a * b, 1)
      const f32 = new Float32Array(nRows * s.ne[0]!)
      fillTensor(s, f32, o.seed * 1000 + i)
      const bytes = quantizeRows(s.type, f32, nRows, s.ne[0]!, quantizeNeedsImatrix(s.type) ? syntheticImatrix(s.ne[0]!) : undefined)
      if (bytes.length !== rowSize(s.type, s.ne[0]!) * nRows || bytes.length !== info.bytes) throw new Error(`size mismatch for ${s.name}`)
      writeSync(fd, bytes, 0, bytes.length, info.fileOffset)
      if (o.reuseLayers === true && s.name.startsWith('blk.0.')) layer0.set(suffix, bytes)
    })
    // pad the file to the aligned end of the last tensor
    const last = [...header.tensors.values()].reduce((a, t) => Math.max(a, t.fileOffset + t.bytes), 0)
    writeSync(fd, new Uint8Array(1), 0, 1, last - 1)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, o.out)
  if (o.split !== undefined && o.split > 1) {
    splitGguf({ input: o.out, outPrefix: o.out.replace(/\.gguf$/i, ''), parts: o.split })
    rmSync(o.out)
  }
}

/**
 * llama-quantize's --tensor-type: the first rule whose pattern (a regular expression) matches a tensor's
 * name sets its type; only tensors generated in the file's weight type (the quantised matrices) change.
 */
function withTensorTypes (specs: GenTensor[], weightType: number, rules: ReadonlyArray<{ pattern: string, type: ModelType }>): GenTensor[] {
  const compiled = rules.map((r) => {
    if (!(r.type in FILE_TYPE)) throw new Error(`--tensor-type ${r.pattern}=${r.type}: unknown type`)
    return { re: new RegExp(r.pattern), type: MODEL_TYPES[r.type] }
  })
  return specs.map((t) => {
    const rule = t.type === weightType ? compiled.find((r) => r.re.test(t.name)) : undefined
    return rule === undefined ? t : { ...t, type: rule.type }
  })
}

/** `PATTERN=TYPE` of --tensor-type */
export function parseTensorType (kv: string): { pattern: string, type: ModelType } {
  const eq = kv.lastIndexOf('=')
  const type = kv.slice(eq + 1).toLowerCase()
  if (eq < 1 || !(type in FILE_TYPE)) throw new Error(`--tensor-type expects PATTERN=TYPE with TYPE one of ${Object.keys(FILE_TYPE).join(', ')}; got '${kv}'`)
  return { pattern: kv.slice(0, eq), type: type as ModelType }
}

/** `key=value` → number when numeric, boolean for true/false, else string. */
export function parseArchOption (kv: string): [string, number | boolean | string] {
  const eq = kv.indexOf('=')
  if (eq < 1) throw new Error(`--opt expects key=value, got '${kv}'`)
  const key = kv.slice(0, eq)
  const v = kv.slice(eq + 1)
  if (v === 'true' || v === 'false') return [key, v === 'true']
  const n = Number(v)
  return [key, v !== '' && Number.isFinite(n) ? n : v]
}

function main (): void {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' }, layers: { type: 'string' }, embd: { type: 'string' }, heads: { type: 'string' },
      'kv-heads': { type: 'string' }, ff: { type: 'string' }, type: { type: 'string' }, 'vocab-from': { type: 'string' },
      seed: { type: 'string' }, context: { type: 'string' }, 'reuse-layers': { type: 'boolean' }, split: { type: 'string' }, arch: { type: 'string' }, 'head-dim': { type: 'string' }, 'rope-freqs': { type: 'boolean' }, tied: { type: 'boolean' }, opt: { type: 'string', multiple: true }, 'tensor-type': { type: 'string', multiple: true }, help: { type: 'boolean' }
    }
  })
  if (values.help === true || values.out === undefined) {
    process.stdout.write(`usage: make-model --out FILE [--layers ${DEFAULTS.layers}] [--embd ${DEFAULTS.embd}] [--heads ${DEFAULTS.heads}] [--kv-heads ${DEFAULTS.kvHeads}] [--ff ${DEFAULTS.ff}] [--type ${Object.keys(MODEL_TYPES).join('|')}] [--vocab-from GGUF] [--seed N] [--context N] [--reuse-layers] [--arch ${[...GENERATORS.keys()].join('|')}] [--opt KEY=VALUE ...] [--tensor-type REGEX=TYPE ...] [--head-dim N] [--rope-freqs] [--tied] [--split N]\n`)
    process.exit(values.help === true ? 0 : 2)
  }
  const int = (v: string | undefined, d: number): number => v === undefined ? d : Number.parseInt(v, 10)
  const type = (values.type ?? DEFAULTS.type).toLowerCase()
  if (!(type in MODEL_TYPES)) throw new Error(`unknown --type ${type} (ggml CPU weight types: ${Object.keys(MODEL_TYPES).join(', ')})`)
  const o: MakeModelOptions = {
    out: values.out,
    layers: int(values.layers, DEFAULTS.layers),
    embd: int(values.embd, DEFAULTS.embd),
    heads: int(values.heads, DEFAULTS.heads),
    kvHeads: int(values['kv-heads'], DEFAULTS.kvHeads),
    ff: int(values.ff, DEFAULTS.ff),
    type: type as ModelType,
    vocabFrom: values['vocab-from'] ?? DEFAULTS.vocabFrom,
    seed: int(values.seed, DEFAULTS.seed),
    context: int(values.context, DEFAULTS.context),
    reuseLayers: values['reuse-layers'] === true,
    split: values.split === undefined ? undefined : int(values.split, 1),
    arch: values.arch ?? 'llama',
    archOptions: Object.fromEntries((values.opt ?? []).map(parseArchOption)),
    tensorTypes: (values['tensor-type'] ?? []).map(parseTensorType),
    ropeFreqs: values['rope-freqs'] === true,
    tied: values.tied === true,
    headDim: values['head-dim'] === undefined ? undefined : int(values['head-dim'], 0)
  }
  const t0 = Date.now()
  makeModel(o)
  process.stdout.write(`wrote ${o.split !== undefined && o.split > 1 ? `${splitGgufPath(o.out.replace(/\.gguf$/i, ''), 0, o.split)} and ${o.split - 1} more parts` : o.out} (${o.type}, ${o.layers} layers, embd ${o.embd}) in ${Date.now() - t0} ms\n`)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main()
