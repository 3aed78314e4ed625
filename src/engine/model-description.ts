import { InvalidGgufError, UnknownArchitectureError, UnsupportedModelError, UnsupportedTensorTypeError } from '../shared/errors/engine-errors.js'
import { ARCHITECTURES } from './arch/registry.js'
import { SUPPORTED_WEIGHT_TYPES, ggmlTypeName } from './gguf/ggml-types.js'
import { readModelGguf } from './gguf/model-gguf-reader.js'
import { MetadataReader } from './gguf/metadata-reader.js'
import { denseDecoderHParams } from './arch/dense-hparams.js'
import { layerKvWidths } from './arch/arch-spec.js'
import type { ArchSpec } from './arch/arch-spec.js'
import type { HParams } from './hparams.js'
import type { ModelGguf } from './gguf/model-gguf-reader.js'
import type { ModelMetadata } from './types.js'

export type { HParams }

export interface ModelDescription {
  /** the model's header; for a split model all parts' tensors (each names its part) */
  gguf: ModelGguf
  arch: ArchSpec
  hparams: HParams
  metadata: ModelMetadata
}

const SUPPORTED_NAMES = [...SUPPORTED_WEIGHT_TYPES].map(ggmlTypeName)

/**
 * Reads and validates a GGUF's header: architecture, hyper-parameters, tensor table and types. No native calls.
 * A split model is given by its first part; every part's header is read and checked (readModelGguf).
 */
export function describeModel (path: string): ModelDescription {
  const gguf = readModelGguf(path)
  const archName = gguf.metadata.get('general.architecture')
  if (typeof archName !== 'string') throw new InvalidGgufError(`${path}: missing general.architecture`)
  const arch = ARCHITECTURES.get(archName)
  if (arch === undefined) throw new UnknownArchitectureError(archName, [...ARCHITECTURES.keys()])
  const m = new MetadataReader(gguf, archName)
  const nLayers = m.posInt('block_count')
  const nEmbd = m.posInt('embedding_length')
  const nHead = m.posInt('attention.head_count')
  const nHeadKv = m.posInt('attention.head_count_kv', nHead)
  const nFf = m.nonNegInt('feed_forward_length', 0)
  if (nHead % nHeadKv !== 0) throw new InvalidGgufError(`${path}: ${nHead} heads is not a multiple of ${nHeadKv} kv heads`)
  // head size: attention.key_length when present (qwen3 and others decouple it from n_embd / n_head)
  if (!m.has('attention.key_length') && nEmbd % nHead !== 0) throw new InvalidGgufError(`${path}: n_embd ${nEmbd} is not a multiple of ${nHead} heads`)
  const headDim = m.posInt('attention.key_length', nEmbd / nHead)
  const valueDim = m.posInt('attention.value_length', headDim)
  const nRot = m.nonNegInt('rope.dimension_count', headDim)
  const nExpert = m.nonNegInt('expert_count', 0)
  const nExpertUsed = m.nonNegInt('expert_used_count', 0)
  const scalingType = m.str('rope.scaling.type') ?? 'none'
  let ropeFreqScale = 1
  if (scalingType === 'linear') {
    ropeFreqScale = 1 / m.float('rope.scaling.factor', 1)
  } else if (scalingType === 'none' && m.has('rope.scale_linear')) {
    ropeFreqScale = 1 / m.float('rope.scale_linear')
  }
  const contextLength = m.posInt('context_length')
  const nCtxOrig = m.num('rope.scaling.original_context_length', contextLength)

  const embd = gguf.tensors.get('token_embd.weight')
  if (embd === undefined) throw new InvalidGgufError(`${path}: missing tensor token_embd.weight`)
  if (embd.ne.length !== 2 || embd.ne[0] !== nEmbd) throw new InvalidGgufError(`${path}: token_embd.weight has shape [${embd.ne.join(', ')}], expected [${nEmbd}, n_vocab]`)
  const nVocab = embd.ne[1]!
  const tiedOutput = !gguf.tensors.has('output.weight')

  const base: HParams = {
    nLayers, nEmbd, nHead, nHeadKv, headDim, nFf, nVocab, contextLength,
    rmsEps: m.float('attention.layer_norm_rms_epsilon', 0),
    nRot, ropeFreqBase: m.float('rope.freq_base', 10000), ropeFreqScale, nCtxOrig,
    attentionScale: m.float('attention.scale', 0),
    tiedOutput, ropeScalingType: scalingType, valueDim, nExpert, nExpertUsed,
    swaWindow: new Array<number>(nLayers).fill(0), swaType: 'standard'
  }
  const hparams = (arch.hparams ?? denseDecoderHParams)(m, base)
  const { nLayers: L } = hparams
  checkSwa(path, hparams)

  // every tensor the graph needs must exist with the right shape and a supported type
  const layerBytes = new Array<number>(L).fill(0)
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
    // the layers the graph runs (glm4moe: block_count minus its nextn / MTP blocks)
    architecture: archName, nLayers: L, nEmbd, nVocab, nHead, nHeadKv, nFf, contextLength,
    layerBytes, embeddingBytes: embd.bytes, outputBytes, fileBytes: gguf.fileBytes,
    // f16 K and V rows per cell, the widest layer (MLA: one K row of kv_lora_rank + rope, no V)
    ...(hparams.swaWindow?.some((w) => w > 0) === true ? { swaWindow: [...hparams.swaWindow] } : {}),
    kvBytesPerTokenPerLayer: Math.max(...Array.from({ length: L }, (_, il) => { const w = layerKvWidths(arch, hparams, il); return 2 * (w.k + w.v) }))
  }
  const act = arch.activationFloatsPerToken?.(hparams)
  if (act !== undefined) metadata.activationFloatsPerToken = act
  return { gguf, arch, hparams, metadata }
}

/** The engine keeps one KV cache for all sliding-window layers (as llama.cpp): they must share one window. */
function checkSwa (path: string, hp: HParams): void {
  if (hp.swaWindow === undefined) return
  if (hp.swaWindow.length !== hp.nLayers) throw new InvalidGgufError(`${path}: ${hp.swaWindow.length} sliding-window entries for ${hp.nLayers} layers`)
  const windows = new Set(hp.swaWindow.filter((w) => w !== 0))
  for (const w of windows) if (!Number.isInteger(w) || w < 1) throw new InvalidGgufError(`${path}: sliding window ${w} is not a positive integer`)
  if (windows.size > 1) throw new UnsupportedModelError(`${path}: sliding-window layers with different windows (${[...windows].join(', ')})`)
  if ((hp.swaType ?? 'standard') !== 'standard' && windows.size > 0) throw new UnsupportedModelError(`${path}: sliding-window type '${hp.swaType}' is not supported`)
}

/** Model facts for the planner and callers, from the GGUF header alone (no native code, no weights read). */
export function readModelMetadata (path: string): ModelMetadata {
  return describeModel(path).metadata
}
