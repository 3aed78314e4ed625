/**
 * The seam of scripts/make-model.ts: one generator per architecture (scripts/model-gen/<arch>.ts, one line in
 * registry.ts) lists the metadata keys and the tensors of a random-weight model; make-model writes the header
 * (ggml's gguf writer), fills each tensor with deterministic random values and quantises it (ggml's quantiser).
 */
import type { KvValue } from '../../src/engine/native/gguf-writer.js'

/** Shape and type options common to every architecture (see make-model --help). */
export interface GenOptions {
  layers: number
  embd: number
  heads: number
  kvHeads: number
  ff: number
  context: number
  /** ggml type id of the big weight matrices */
  weightType: number
  /** elements per block of weightType: every quantised row length must be a multiple */
  block: number
  /** attention head size (default embd / heads) */
  headDim?: number
  ropeFreqs?: boolean
  tied?: boolean
  /** architecture-specific options (`--opt key=value`), e.g. experts=8 */
  arch: Readonly<Record<string, number | boolean | string>>
}

/**
 * One tensor to generate. `init`: 'random' uniform in [-scale, scale); 'ones' (norm weights);
 * 'rope-factors' (1…8 ramp); 'zeros'.
 */
export interface GenTensor {
  name: string
  ne: number[]
  type: number
  init: 'random' | 'ones' | 'zeros' | 'rope-factors'
  scale?: number
}

export interface ArchGenerator {
  /** general.architecture */
  name: string
  /** `<arch>.*` keys (and any other keys) to write; `a(k)` prefixes the architecture */
  metadata: (o: GenOptions, a: (k: string) => string) => Record<string, KvValue>
  tensors: (o: GenOptions) => GenTensor[]
}

/** A numeric `--opt` value with a default. */
export function optNum (o: GenOptions, key: string, fallback: number): number {
  const v = o.arch[key]
  if (v === undefined) return fallback
  const n = typeof v === 'number' ? v : Number(v)
  if (!Number.isFinite(n)) throw new Error(`--opt ${key}=${String(v)} is not a number`)
  return n
}

/** A boolean `--opt` value with a default. */
export function optBool (o: GenOptions, key: string, fallback: boolean): boolean {
  const v = o.arch[key]
  if (v === undefined) return fallback
  return v === true || v === 'true' || v === 1 || v === '1'
}
