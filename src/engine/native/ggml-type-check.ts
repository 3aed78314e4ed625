/**
 * The ggml tensor types of the loaded ggml, read through ggml_get_type_traits / ggml_type_name /
 * ggml_blck_size / ggml_type_size and the CPU backend's ggml_get_type_traits_cpu: used by
 * scripts/gen-ggml-type-table.ts to write src/engine/gguf/ggml-type-table.ts, and at startup to check that
 * table (sizes and names) against the ggml actually loaded.
 */
import { NativeLibraryError } from '../../shared/errors/engine-errors.js'
import { GGML_TYPE_COUNT, GGML_TYPE_TABLE } from '../gguf/ggml-type-table.js'
import { cpuTypeTraitsFn } from './ggml-lib.js'
import type { GgmlLib, Ptr, TypeTraits } from './ggml-lib.js'

export interface ProbedType { id: number, name: string, blockSize: number, typeSize: number, cpuWeight: boolean }

const F32 = 0
const I32 = 26

/**
 * Every live type id in [0, count) (removed ids have block size 0). `cpuWeight`: the CPU backend can use
 * the type as a weight: it has a vec_dot kernel (mul_mat), a to_float (get_rows of a quantised type), and
 * ggml_backend_dev_supports_op accepts a mul_mat and a get_rows of it in a plain CPU buffer.
 * `count` must be the pinned GGML_TYPE_COUNT: ggml does not bound-check type ids in release builds.
 */
export function probeGgmlTypes (l: GgmlLib, cpuDev: Ptr, count: number): ProbedType[] {
  const cpuTraits = cpuTypeTraitsFn(l.libDir)
  const out: ProbedType[] = []
  const ctx = l.ggml_init({ mem_size: 4 * count * Number(l.ggml_tensor_overhead()), mem_buffer: null, no_alloc: true }) as Ptr
  try {
    for (let id = 0; id < count; id++) {
      const t = l.koffi.decode(l.ggml_get_type_traits(id), 'ggml_type_traits') as TypeTraits
      const blockSize = Number(l.ggml_blck_size(id))
      const typeSize = Number(l.ggml_type_size(id))
      const name = String(l.ggml_type_name(id))
      if (blockSize !== Number(t.blck_size) || typeSize !== Number(t.type_size) || name !== t.type_name) {
        throw new NativeLibraryError(`ggml type ${id}: ggml_get_type_traits disagrees with ggml_blck_size / ggml_type_size / ggml_type_name`)
      }
      if (blockSize === 0) continue
      const c = cpuTraits?.(id)
      let cpuWeight = (c === undefined || isSet(c.vec_dot)) && (id === F32 || isSet(t.to_float))
      if (cpuWeight) {
        const ne0 = blockSize * Math.ceil(256 / blockSize)
        const w = l.ggml_new_tensor(ctx, id, 2, [BigInt(ne0), 8n]) as Ptr
        const x = l.ggml_new_tensor(ctx, F32, 2, [BigInt(ne0), 512n]) as Ptr
        const rows = l.ggml_new_tensor(ctx, I32, 1, [512n]) as Ptr
        cpuWeight = l.ggml_backend_dev_supports_op(cpuDev, l.ggml_mul_mat(ctx, w, x)) === true &&
          l.ggml_backend_dev_supports_op(cpuDev, l.ggml_get_rows(ctx, w, rows)) === true
      }
      out.push({ id, name, blockSize, typeSize, cpuWeight })
    }
  } finally {
    l.ggml_free(ctx)
  }
  return out
}

function isSet (p: unknown): boolean { return p !== null && p !== undefined && p !== 0n && p !== 0 }

/**
 * Startup check: every id of the pinned GGML_TYPE_COUNT has the name, block size and type size the table
 * says (removed ids: block size 0). Returns the ids the loaded CPU backend can use as weights (may be fewer
 * than the table's on another build: the loader refuses those with UnsupportedTensorTypeError).
 */
export function checkTypeTable (l: GgmlLib, cpuDev: Ptr): ReadonlySet<number> {
  const probed = new Map(probeGgmlTypes(l, cpuDev, GGML_TYPE_COUNT).map((p) => [p.id, p]))
  const fail = (what: string): never => { throw new NativeLibraryError(`ggml at ${l.libDir} does not match the pinned type table: ${what}`) }
  for (const [id, name, blockSize, typeSize] of GGML_TYPE_TABLE) {
    const p = probed.get(id)
    if (p === undefined) fail(`type ${id} (${name}) is missing`)
    else if (p.name !== name || p.blockSize !== blockSize || p.typeSize !== typeSize) fail(`type ${id} is ${p.name} (block ${p.blockSize}, ${p.typeSize} bytes), expected ${name} (block ${blockSize}, ${typeSize} bytes)`)
  }
  if (probed.size !== GGML_TYPE_TABLE.length) fail(`ggml has ${probed.size} live types, the table ${GGML_TYPE_TABLE.length}`)
  return new Set([...probed.values()].filter((p) => p.cpuWeight).map((p) => p.id))
}
