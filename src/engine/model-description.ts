import { InvalidGgufError, UnknownArchitectureError, UnsupportedModelError, UnsupportedTensorTypeError } from '../shared/errors/engine-errors.js'
import { ARCHITECTURES } from './arch/registry.js'
import { SUPPORTED_WEIGHT_TYPES, ggmlTypeName } from './gguf/ggml-types.js'
import { readGguf } from './gguf/gguf-reader.js'
import type { ArchSpec } from './arch/arch-spec.js'
import type { HParams } from './hparams.js'
import type { GgufFile, GgufValue } from './gguf/gguf-reader.js'
import type { ModelMetadata } from './types.js'

export type { HParams }

export interface ModelDescription {
  gguf: GgufFile
  arch: ArchSpec
  hparams: HParams
  metadata: ModelMetadata
}

const SUPPORTED_NAMES = [...SUPPORTED_WEIGHT_TYPES].map(ggmlTypeName)

function num (f: GgufFile, key: string, fallback?: number): number {
  const v: GgufValue | undefined = f.metadata.get(key)
  if (v === undefined) {
    if (fallback !== undefined) return fallback
    throw new InvalidGgufError(`${f.path}: missing metadata key ${key}`)
  }
  if (typeof v === 'number') return v
  if (typeof v === 'bigint') return Number(v)
  if (typeof v === 'object' && v.values !== undefined && v.values.length > 0 && v.values.every((x) => x === v.values![0])) {
    const x = v.values[0]
    if (typeof x === 'number' || typeof x === 'bigint') return Number(x)
  }
  throw new InvalidGgufError(`${f.path}: metadata key ${key} is not a number (or a constant per-layer array)`)
}

function posInt (f: GgufFile, key: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new InvalidGgufError(`${f.path}: ${key} = ${value} is not a positive integer`)
  return value
}

/** Reads and validates a GGUF's header: architecture, hyper-parameters, tensor table and types. No native calls. */
export function describeModel (path: string): ModelDescription {
  const gguf = readGguf(path)
  const archName = gguf.metadata.get('general.architecture')
  if (typeof archName !== 'string') throw new InvalidGgufError(`${path}: missing general.architecture`)
  const arch = ARCHITECTURES.get(archName)
  if (arch === undefined) throw new UnknownArchitectureError(archName, [...ARCHITECTURES.keys()])
  const k = (s: string): string => `${archName}.${s}`
  const nLayers = posInt(gguf, k('block_count'), num(gguf, k('block_count')))
  const nEmbd = posInt(gguf, k('embedding_length'), num(gguf, k('embedding_length')))
  const nHead = posInt(gguf, k('attention.head_count'), num(gguf, k('attention.head_count')))
  const nHeadKv = posInt(gguf, k('attention.head_count_kv'), num(gguf, k('attention.head_count_kv'), nHead))
  const nFf = posInt(gguf, k('feed_forward_length'), num(gguf, k('feed_forward_length')))
  if (nHead % nHeadKv !== 0) throw new InvalidGgufError(`${path}: ${nHead} heads is not a multiple of ${nHeadKv} kv heads`)
  // head size: attention.key_length when present (qwen3 and others decouple it from n_embd / n_head)
  if (!gguf.metadata.has(k('attention.key_length')) && nEmbd % nHead !== 0) throw new InvalidGgufError(`${path}: n_embd ${nEmbd} is not a multiple of ${nHead} heads`)
  const headDim = posInt(gguf, k('attention.key_length'), num(gguf, k('attention.key_length'), nEmbd / nHead))
  if (num(gguf, k('attention.value_length'), headDim) !== headDim) throw new UnsupportedModelError(`${path}: ${k('attention.value_length')} != key_length (${headDim})`)
  const nRot = num(gguf, k('rope.dimension_count'), headDim)
  if (nRot !== headDim) throw new UnsupportedModelError(`${path}: partial rotary embeddings (rope.dimension_count ${nRot} != ${headDim})`)
  if (gguf.metadata.has(k('expert_count')) && num(gguf, k('expert_count')) > 0) throw new UnsupportedModelError(`${path}: mixture-of-experts models are not supported`)
  const scalingType = gguf.metadata.get(k('rope.scaling.type'))
  let ropeFreqScale = 1
  if (scalingType === 'linear') {
    ropeFreqScale = 1 / num(gguf, k('rope.scaling.factor'), 1)
  } else if (scalingType !== undefined && scalingType !== 'none') {
    throw new UnsupportedModelError(`${path}: rope scaling '${String(scalingType)}' is not supported`)
  } else if (gguf.metadata.has(k('rope.scale_linear'))) {
    ropeFreqScale = 1 / num(gguf, k('rope.scale_linear'))
  }
  const contextLength = posInt(gguf, k('context_length'), num(gguf, k('context_length')))
  const nCtxOrig = num(gguf, k('rope.scaling.original_context_length'), contextLength)

  const embd = gguf.tensors.get('token_embd.weight')
  if (embd === undefined) throw new InvalidGgufError(`${path}: missing tensor token_embd.weight`)
  if (embd.ne.length !== 2 || embd.ne[0] !== nEmbd) throw new InvalidGgufError(`${path}: token_embd.weight has shape [${embd.ne.join(', ')}], expected [${nEmbd}, n_vocab]`)
  const nVocab = embd.ne[1]!
  const tiedOutput = !gguf.tensors.has('output.weight')

  const hparams: HParams = {
    nLayers, nEmbd, nHead, nHeadKv, headDim, nFf, nVocab, contextLength,
    rmsEps: num(gguf, k('attention.layer_norm_rms_epsilon')),
    nRot, ropeFreqBase: num(gguf, k('rope.freq_base'), 10000), ropeFreqScale, nCtxOrig,
    attentionScale: num(gguf, k('attention.scale'), 0),
    tiedOutput
  }

  // every tensor the graph needs must exist with the right shape and a supported type
  const layerBytes = new Array<number>(nLayers).fill(0)
  for (const spec of arch.tensors(hparams)) {
    const t = gguf.tensors.get(spec.name)
    if (t === undefined) {
      if (spec.optional) continue
      throw new InvalidGgufError(`${path}: missing tensor ${spec.name}`)
    }
    const ne = [...t.ne]
    while (ne.length > spec.ne.length && ne[ne.length - 1] === 1) ne.pop()
    if (ne.length !== spec.ne.length || ne.some((d, i) => d !== spec.ne[i])) {
      throw new InvalidGgufError(`${path}: tensor ${spec.name} has shape [${t.ne.join(', ')}], expected [${spec.ne.join(', ')}]`)
    }
    if (!SUPPORTED_WEIGHT_TYPES.has(t.type)) throw new UnsupportedTensorTypeError(spec.name, t.type, ggmlTypeName(t.type), SUPPORTED_NAMES)
    if (spec.layer !== undefined) layerBytes[spec.layer]! += t.bytes
  }
  const outputBytes = (gguf.tensors.get('output_norm.weight')?.bytes ?? 0) + (gguf.tensors.get(tiedOutput ? 'token_embd.weight' : 'output.weight')?.bytes ?? 0)
  const metadata: ModelMetadata = {
    architecture: archName, nLayers, nEmbd, nVocab, nHead, nHeadKv, nFf, contextLength,
    layerBytes, embeddingBytes: embd.bytes, outputBytes, fileBytes: gguf.fileBytes,
    kvBytesPerTokenPerLayer: 2 * 2 * headDim * nHeadKv
  }
  return { gguf, arch, hparams, metadata }
}

/** Model facts for the planner and callers, from the GGUF header alone (no native code, no weights read). */
export function readModelMetadata (path: string): ModelMetadata {
  return describeModel(path).metadata
}
