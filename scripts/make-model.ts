#!/usr/bin/env -S node --import tsx
/**
 * Writes a random-weight GGUF of any architecture in scripts/model-gen/ (default llama), shape and tensor type, with the vocabulary / tokenizer
 * metadata copied from a real GGUF (default: the 32000-token Llama 2 vocab of llama-2-tiny-random.gguf),
 * so node-llama-cpp loads and tokenizes it. Header through ggml's gguf writer, weights through ggml_quantize_chunk.
 *
 *   node --import tsx scripts/make-model.ts --out /tmp/m.gguf --layers 2 --embd 256 --heads 4 --kv-heads 2 --ff 512 --type q4_k
 */
import { closeSync, openSync, renameSync, writeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { readGguf } from '../src/engine/gguf/gguf-reader.js'
import { quantizeRows, rowSize, writeGgufHeader } from '../src/engine/native/gguf-writer.js'
import { GENERATORS } from './model-gen/registry.js'
import type { GenOptions, GenTensor } from './model-gen/types.js'

export const MODEL_TYPES = { f32: 0, f16: 1, q4_0: 2, q8_0: 8, q4_k: 12, q5_k: 13, q6_k: 14 } as const
export type ModelType = keyof typeof MODEL_TYPES
/** llama_ftype of the file (general.file_type) */
const FILE_TYPE: Record<ModelType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, q4_k: 15, q5_k: 17, q6_k: 18 }
const BLOCK: Record<ModelType, number> = { f32: 1, f16: 1, q4_0: 32, q8_0: 32, q4_k: 256, q5_k: 256, q6_k: 256 }

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
  /** quantise layer 0 once and write the same bytes for every layer (fast generation of big bench models) */
  reuseLayers?: boolean
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

function fillTensor (t: GenTensor, f32: Float32Array, seed: number): void {
  if (t.init === 'ones') f32.fill(1)
  else if (t.init === 'zeros') f32.fill(0)
  else if (t.init === 'rope-factors') f32.forEach((_, j) => { f32[j] = 1 + 7 * j / f32.length }) // rope factors 1…8
  else fillRandom(f32, seed, t.scale ?? 1)
}

export function makeModel (o: MakeModelOptions): void {
  const blk = BLOCK[o.type]
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
  const specs = gen.tensors(g)
  for (const t of specs) {
    if (t.type !== 0 && t.ne[0]! % blk !== 0) throw new Error(`${o.type} needs ${t.name}'s rows (${t.ne[0]}) to be a multiple of ${blk}`)
  }
  const tmp = `${o.out}.tmp-${process.pid}`
  const a = (key: string): string => `${arch}.${key}`
  writeGgufHeader(tmp, o.vocabFrom, ['general.', 'llama.', `${arch}.`], {
    'general.architecture': { kind: 'str', value: arch },
    'general.name': { kind: 'str', value: `random-${arch}-${o.layers}x${o.embd}-${o.type}` },
    'general.file_type': { kind: 'u32', value: FILE_TYPE[o.type] },
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
      const bytes = quantizeRows(s.type, f32, nRows, s.ne[0]!)
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
      seed: { type: 'string' }, context: { type: 'string' }, 'reuse-layers': { type: 'boolean' }, arch: { type: 'string' }, 'head-dim': { type: 'string' }, 'rope-freqs': { type: 'boolean' }, tied: { type: 'boolean' }, opt: { type: 'string', multiple: true }, help: { type: 'boolean' }
    }
  })
  if (values.help === true || values.out === undefined) {
    process.stdout.write(`usage: make-model --out FILE [--layers ${DEFAULTS.layers}] [--embd ${DEFAULTS.embd}] [--heads ${DEFAULTS.heads}] [--kv-heads ${DEFAULTS.kvHeads}] [--ff ${DEFAULTS.ff}] [--type ${Object.keys(MODEL_TYPES).join('|')}] [--vocab-from GGUF] [--seed N] [--context N] [--reuse-layers] [--arch ${[...GENERATORS.keys()].join('|')}] [--opt KEY=VALUE ...] [--head-dim N] [--rope-freqs] [--tied]\n`)
    process.exit(values.help === true ? 0 : 2)
  }
  const int = (v: string | undefined, d: number): number => v === undefined ? d : Number.parseInt(v, 10)
  const type = (values.type ?? DEFAULTS.type).toLowerCase()
  if (!(type in MODEL_TYPES)) throw new Error(`unknown --type ${type}`)
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
    arch: values.arch ?? 'llama',
    archOptions: Object.fromEntries((values.opt ?? []).map(parseArchOption)),
    ropeFreqs: values['rope-freqs'] === true,
    tied: values.tied === true,
    headDim: values['head-dim'] === undefined ? undefined : int(values['head-dim'], 0)
  }
  const t0 = Date.now()
  makeModel(o)
  process.stdout.write(`wrote ${o.out} (${o.type}, ${o.layers} layers, embd ${o.embd}) in ${Date.now() - t0} ms\n`)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main()
