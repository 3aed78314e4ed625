/**
 * ggml's own GGUF writer and quantiser, for tools that write model files (scripts/make-model.ts).
 * Values are validated by the caller; tensors are described by no_alloc ggml tensors (header only).
 */
import { NativeCallError } from '../../shared/errors/engine-errors.js'
import { freeContext, ggml, newContext, newTensor } from './ggml.js'
import type { Ptr } from './ggml.js'

export type KvValue = { kind: 'u32', value: number } | { kind: 'i32', value: number } | { kind: 'f32', value: number } | { kind: 'bool', value: boolean } |
  { kind: 'str', value: string } | { kind: 'u32[]', value: number[] } | { kind: 'f32[]', value: number[] }

/** enum gguf_type values of the array element types written here */
const GGUF_TYPE_U32 = 4
const GGUF_TYPE_F32 = 6

export interface HeaderTensor { name: string, type: number, ne: number[] }

/**
 * Writes a GGUF header: every key of `copyKvFrom` (a GGUF file) whose name does not start with one of
 * `dropPrefixes`, then `kv`, then the tensor infos. Returns nothing; the caller appends tensor data at the
 * offsets ggml computed (data section = aligned end of header; each tensor padded to `general.alignment`).
 */
export function writeGgufHeader (path: string, copyKvFrom: string | undefined, dropPrefixes: string[], kv: Record<string, KvValue>, tensors: HeaderTensor[]): void {
  const l = ggml()
  const ctx = l.gguf_init_empty() as Ptr
  const tctx = newContext(tensors.length + 1)
  let src: Ptr | null = null
  try {
    if (copyKvFrom !== undefined) {
      src = l.gguf_init_from_file(copyKvFrom, { no_alloc: true, ctx: null }) as Ptr | null
      if (src === null || src === 0n) throw new NativeCallError(`gguf_init_from_file failed for ${copyKvFrom}`)
      l.gguf_set_kv(ctx, src)
      const drop: string[] = []
      const n = Number(l.gguf_get_n_kv(ctx))
      for (let i = 0; i < n; i++) {
        const key = String(l.gguf_get_key(ctx, i))
        if (dropPrefixes.some((p) => key.startsWith(p)) || key in kv) drop.push(key)
      }
      for (const key of drop) l.gguf_remove_key(ctx, key)
    }
    for (const [key, v] of Object.entries(kv)) {
      if (v.kind === 'u32') l.gguf_set_val_u32(ctx, key, v.value)
      else if (v.kind === 'i32') l.gguf_set_val_i32(ctx, key, v.value)
      else if (v.kind === 'f32') l.gguf_set_val_f32(ctx, key, v.value)
      else if (v.kind === 'bool') l.gguf_set_val_bool(ctx, key, v.value)
      else if (v.kind === 'u32[]') l.gguf_set_arr_data(ctx, key, GGUF_TYPE_U32, Uint32Array.from(v.value), v.value.length)
      else if (v.kind === 'f32[]') l.gguf_set_arr_data(ctx, key, GGUF_TYPE_F32, Float32Array.from(v.value), v.value.length)
      else l.gguf_set_val_str(ctx, key, v.value)
    }
    for (const t of tensors) l.gguf_add_tensor(ctx, newTensor(tctx, t.type, t.ne, t.name))
    if (l.gguf_write_to_file(ctx, path, true) !== true) throw new NativeCallError(`gguf_write_to_file failed for ${path}`)
  } finally {
    if (src !== null && src !== 0n) l.gguf_free(src)
    l.gguf_free(ctx)
    freeContext(tctx)
  }
}

/** Bytes of `nRows` rows of `nPerRow` elements in ggml type `type`. */
export function rowSize (type: number, nPerRow: number): number {
  return Number(ggml().ggml_row_size(type, nPerRow))
}

/** IQ types llama.cpp quantises only with an importance matrix (llama-quant.cpp tensor_requires_imatrix). */
const LLAMA_IMATRIX_TYPES = new Set([16, 17, 18, 19, 22, 29]) // IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ2_S, IQ1_M

/** Whether quantising to `type` needs an importance matrix: ggml asserts one (ggml_quantize_requires_imatrix) or llama.cpp demands one. */
export function quantizeNeedsImatrix (type: number): boolean {
  return LLAMA_IMATRIX_TYPES.has(type) || ggml().ggml_quantize_requires_imatrix(type) === true
}

/**
 * ggml_quantize_chunk over whole rows: (nRows, nPerRow) f32 → bytes of `type`. nPerRow must fit the block size.
 * `imatrix`: (nPerRow) importance per column, required where quantizeNeedsImatrix(type).
 */
export function quantizeRows (type: number, src: Float32Array, nRows: number, nPerRow: number, imatrix?: Float32Array): Uint8Array {
  const l = ggml()
  if (imatrix !== undefined && imatrix.length !== nPerRow) throw new NativeCallError(`imatrix has ${imatrix.length} values, rows have ${nPerRow}`)
  if (imatrix === undefined && l.ggml_quantize_requires_imatrix(type) === true) throw new NativeCallError(`quantising to ${String(l.ggml_type_name(type))} needs an importance matrix`)
  if (src.length !== nRows * nPerRow) throw new NativeCallError(`source has ${src.length} values, expected ${nRows} × ${nPerRow}`)
  const out = new Uint8Array(nRows * rowSize(type, nPerRow))
  l.ggml_quantize_init(type)
  const written = Number(l.ggml_quantize_chunk(type, src, out, 0, nRows, nPerRow, imatrix ?? null))
  if (written !== out.length) throw new NativeCallError(`ggml_quantize_chunk wrote ${written} bytes, expected ${out.length}`)
  return out
}
