/**
 * ggml tensor types as stored in GGUF, from the table generated out of the pinned ggml
 * (ggml-type-table.ts: names, block and type sizes; checked against the loaded ggml at startup).
 * Pure data: the GGUF reader and model description use it without native calls.
 */
import { GGML_TYPE_TABLE } from './ggml-type-table.js'

export interface TypeTraits {
  /** ggml_type_name, e.g. 'q4_K', 'iq2_xxs', 'bf16' */
  name: string
  /** elements per block */
  blockSize: number
  /** bytes per block */
  typeSize: number
}

export const GGML_TYPE_TRAITS: ReadonlyMap<number, TypeTraits> = new Map(
  GGML_TYPE_TABLE.map(([id, name, blockSize, typeSize]) => [id, { name, blockSize, typeSize }]))

/** Types the pinned ggml CPU backend can use as weights (mul_mat and get_rows kernels): the engine accepts these. */
export const SUPPORTED_WEIGHT_TYPES: ReadonlySet<number> = new Set(GGML_TYPE_TABLE.filter((r) => r[4]).map(([id]) => id))

const BY_NAME = new Map(GGML_TYPE_TABLE.map(([id, name]) => [name.toLowerCase(), id]))

export function ggmlTypeName (type: number): string {
  return GGML_TYPE_TRAITS.get(type)?.name ?? `type#${type}`
}

/** The type id of a ggml type name, case-insensitive ('q4_k' = 'q4_K'); undefined when ggml has no such type. */
export function ggmlTypeByName (name: string): number | undefined {
  return BY_NAME.get(name.toLowerCase())
}

/** Bytes of one row of `n` elements; undefined when `n` is not a multiple of the block size. */
export function rowBytes (type: number, n: number): number | undefined {
  const t = GGML_TYPE_TRAITS.get(type)
  if (t === undefined || n % t.blockSize !== 0) return undefined
  return (n / t.blockSize) * t.typeSize
}
