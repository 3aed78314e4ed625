/**
 * ggml tensor types as stored in GGUF (enum ggml_type of the pinned ggml, node-llama-cpp 3.22.1).
 * Block size (elements per block) and type size (bytes per block) for the types the engine may meet.
 */
export enum GgmlType {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30
}

interface TypeTraits { name: string, blockSize: number, typeSize: number }

export const GGML_TYPE_TRAITS: ReadonlyMap<number, TypeTraits> = new Map<number, TypeTraits>([
  [GgmlType.F32, { name: 'f32', blockSize: 1, typeSize: 4 }],
  [GgmlType.F16, { name: 'f16', blockSize: 1, typeSize: 2 }],
  [GgmlType.Q4_0, { name: 'q4_0', blockSize: 32, typeSize: 18 }],
  [GgmlType.Q4_1, { name: 'q4_1', blockSize: 32, typeSize: 20 }],
  [GgmlType.Q5_0, { name: 'q5_0', blockSize: 32, typeSize: 22 }],
  [GgmlType.Q5_1, { name: 'q5_1', blockSize: 32, typeSize: 24 }],
  [GgmlType.Q8_0, { name: 'q8_0', blockSize: 32, typeSize: 34 }],
  [GgmlType.Q8_1, { name: 'q8_1', blockSize: 32, typeSize: 36 }],
  [GgmlType.Q2_K, { name: 'q2_K', blockSize: 256, typeSize: 84 }],
  [GgmlType.Q3_K, { name: 'q3_K', blockSize: 256, typeSize: 110 }],
  [GgmlType.Q4_K, { name: 'q4_K', blockSize: 256, typeSize: 144 }],
  [GgmlType.Q5_K, { name: 'q5_K', blockSize: 256, typeSize: 176 }],
  [GgmlType.Q6_K, { name: 'q6_K', blockSize: 256, typeSize: 210 }],
  [GgmlType.Q8_K, { name: 'q8_K', blockSize: 256, typeSize: 292 }],
  [GgmlType.I8, { name: 'i8', blockSize: 1, typeSize: 1 }],
  [GgmlType.I16, { name: 'i16', blockSize: 1, typeSize: 2 }],
  [GgmlType.I32, { name: 'i32', blockSize: 1, typeSize: 4 }],
  [GgmlType.I64, { name: 'i64', blockSize: 1, typeSize: 8 }],
  [GgmlType.F64, { name: 'f64', blockSize: 1, typeSize: 8 }],
  [GgmlType.BF16, { name: 'bf16', blockSize: 1, typeSize: 2 }]
])

/** Weight types the engine accepts (ggml has kernels for all of them on CPU). */
export const SUPPORTED_WEIGHT_TYPES: ReadonlySet<number> = new Set([
  GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K
])

export function ggmlTypeName (type: number): string {
  return GGML_TYPE_TRAITS.get(type)?.name ?? `type#${type}`
}

/** Bytes of one row of `n` elements; undefined when `n` is not a multiple of the block size. */
export function rowBytes (type: number, n: number): number | undefined {
  const t = GGML_TYPE_TRAITS.get(type)
  if (t === undefined || n % t.blockSize !== 0) return undefined
  return (n / t.blockSize) * t.typeSize
}
