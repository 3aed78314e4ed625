/**
 * Typed wrappers over ggml-lib.ts. Callers pass validated values only: every shape/index check happens in
 * TypeScript before these are called (a GGML_ASSERT aborts the process).
 */
import { promisify } from 'node:util'
import { NativeCallError, NativeLibraryError } from '../../shared/errors/engine-errors.js'
import { loadGgmlLib } from './ggml-lib.js'
import { checkTypeTable } from './ggml-type-check.js'
import { adviseHugePages } from './huge-pages.js'
import type { GgmlLib, Ptr } from './ggml-lib.js'

export type { Ptr }
/** A ggml_tensor pointer. */
export type Tensor = Ptr & { readonly __tensor: unique symbol }

export const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, I32: 26, I64: 27 } as const
export const GGML_PREC_F32 = 10
export const ROPE_MODE_NORMAL = 0
export const ROPE_MODE_NEOX = 2
const DEVICE_TYPE_CPU = 0
const BUFFER_USAGE_WEIGHTS = 1
/** Pinned ggml (node-llama-cpp 3.22.1): sizeof(struct ggml_tensor) = 336, GGML_OBJECT_SIZE = 32. */
const TENSOR_OVERHEAD = 368
const OFF = { type: 0, buffer: 8, ne: 16, nb: 48, op: 80, name: 256, size: 336 } as const

let lib: GgmlLib | undefined
let cpuDev: Ptr = 0n
let cpuWeights: ReadonlySet<number> = new Set()

/** Loads ggml + the best CPU backend once and checks the struct layout and enum values of the pinned version. */
export function ggml (): GgmlLib {
  if (lib !== undefined) return lib
  const l = loadGgmlLib()
  l.ggml_backend_load_all_from_path(l.libDir)
  const dev = l.ggml_backend_dev_by_type(DEVICE_TYPE_CPU) as Ptr
  if (dev === 0n || dev === null) throw new NativeLibraryError(`no CPU backend could be loaded from ${l.libDir}`)
  assertLayout(l)
  cpuWeights = checkTypeTable(l, dev)
  cpuDev = dev
  lib = l
  return l
}

/** ggml type ids the loaded CPU backend has kernels for as weights (mul_mat, get_rows): checked at startup. */
export function cpuWeightTypes (): ReadonlySet<number> { ggml(); return cpuWeights }

function assertLayout (l: GgmlLib): void {
  const fail = (what: string): never => { throw new NativeLibraryError(`ggml at ${l.libDir} does not match the pinned layout: ${what}`) }
  // the type ids used by name in the engine (every other type: checkTypeTable)
  for (const [name, id] of Object.entries(GGML_TYPE)) if (String(l.ggml_type_name(id)).toUpperCase() !== name) fail(`type ${id} is ${String(l.ggml_type_name(id))}, expected ${name}`)
  if (Number(l.ggml_tensor_overhead()) !== TENSOR_OVERHEAD) fail(`ggml_tensor_overhead() = ${String(l.ggml_tensor_overhead())}, expected ${TENSOR_OVERHEAD}`)
  if (l.ggml_op_name(1) !== 'DUP' || l.ggml_op_name(2) !== 'ADD') fail('ggml_op enum differs')
  const ctx = l.ggml_init({ mem_size: 4096, mem_buffer: null, no_alloc: true }) as Ptr
  try {
    const t = l.ggml_new_tensor(ctx, GGML_TYPE.Q8_0, 2, [64n, 3n]) as Ptr
    l.ggml_set_name(t, 'layout-probe')
    const v = new DataView(l.koffi.view(t, OFF.size))
    const ok = v.getInt32(OFF.type, true) === GGML_TYPE.Q8_0 && v.getBigUint64(OFF.buffer, true) === 0n &&
      v.getBigInt64(OFF.ne, true) === 64n && v.getBigInt64(OFF.ne + 8, true) === 3n && v.getBigInt64(OFF.ne + 16, true) === 1n &&
      v.getBigUint64(OFF.nb, true) === 34n && v.getBigUint64(OFF.nb + 8, true) === 68n &&
      Buffer.from(v.buffer, OFF.name, 12).toString('latin1') === 'layout-probe' && Number(l.ggml_nbytes(t)) === 204
    if (!ok) fail('ggml_tensor field offsets (type/buffer/ne/nb/name) differ')
  } finally {
    l.ggml_free(ctx)
  }
}

export function cpuDevice (): Ptr { ggml(); return cpuDev }

/** Reads ne[0..3] of a tensor. */
export function tensorNe (t: Ptr): [number, number, number, number] {
  const v = new DataView(ggml().koffi.view(t, OFF.size))
  return [0, 1, 2, 3].map((i) => Number(v.getBigInt64(OFF.ne + 8 * i, true))) as [number, number, number, number]
}

/** Whether a tensor has a buffer (a graph input no op reads gets none from the allocator). */
export function tensorHasBuffer (t: Ptr): boolean {
  return new DataView(ggml().koffi.view(t, OFF.size)).getBigUint64(OFF.buffer, true) !== 0n
}

/** Reads nb[0..3] of a tensor. */
export function tensorNb (t: Ptr): [number, number, number, number] {
  const v = new DataView(ggml().koffi.view(t, OFF.size))
  return [0, 1, 2, 3].map((i) => Number(v.getBigUint64(OFF.nb + 8 * i, true))) as [number, number, number, number]
}

/** Writes the `buffer` field (for the supports_op trial, as llama.cpp does with a dummy buffer). */
function setTensorBuffer (t: Ptr, buffer: Ptr): void {
  new DataView(ggml().koffi.view(t, OFF.size)).setBigUint64(OFF.buffer, buffer, true)
}

export function newContext (maxTensors: number, extraBytes = 0): Ptr {
  const l = ggml()
  const ctx = l.ggml_init({ mem_size: maxTensors * Number(l.ggml_tensor_overhead()) + extraBytes, mem_buffer: null, no_alloc: true }) as Ptr
  if (ctx === 0n || ctx === null) throw new NativeCallError('ggml_init failed')
  return ctx
}

export function freeContext (ctx: Ptr): void { ggml().ggml_free(ctx) }

export function newTensor (ctx: Ptr, type: number, ne: readonly number[], name?: string): Tensor {
  const l = ggml()
  const t = l.ggml_new_tensor(ctx, type, ne.length, ne.map((x) => BigInt(x))) as Tensor
  if (name !== undefined) l.ggml_set_name(t, name)
  return t
}

/** A weight buffer type and the device that answers supports_op for it (llama.cpp's buft_list_t entry). */
export interface BufferTypeChoice { name: string, buft: Ptr, dev: Ptr }

/** The device's extra buffer types (ggml_backend_dev_get_extra_bufts of its registry), in order. */
function extraBufferTypes (dev: Ptr): BufferTypeChoice[] {
  const l = ggml()
  const out: BufferTypeChoice[] = []
  const reg = l.ggml_backend_dev_backend_reg(dev) as Ptr
  const fnPtr = l.ggml_backend_reg_get_proc_address(reg, 'ggml_backend_dev_get_extra_bufts') as Ptr | null
  if (fnPtr !== null && fnPtr !== 0n) {
    const getExtra = l.koffi.decode(fnPtr, l.getExtraBuftsProto as never) as (dev: Ptr) => Ptr | null
    const arr = getExtra(dev)
    for (let i = 0n; arr !== null && arr !== 0n && i < 64n; i++) {
      const b = new DataView(l.koffi.view(arr + 8n * i, 8)).getBigUint64(0, true)
      if (b === 0n) break
      out.push({ name: String(l.ggml_backend_buft_name(b)), buft: b, dev })
    }
  }
  return out
}

/**
 * CPU buffer types in llama.cpp's order (make_cpu_buft_list): with a GPU device in use, its host (pinned)
 * buffer type first; then the CPU device's extra types (e.g. CPU_REPACK, AMX), then plain CPU.
 */
export function cpuBufferTypes (gpuDev?: Ptr): BufferTypeChoice[] {
  const l = ggml()
  const out: BufferTypeChoice[] = []
  if (gpuDev !== undefined) {
    const host = l.ggml_backend_dev_host_buffer_type(gpuDev) as Ptr | null
    if (host !== null && host !== 0n) out.push({ name: String(l.ggml_backend_buft_name(host)), buft: host, dev: gpuDev })
  }
  out.push(...extraBufferTypes(cpuDev))
  const cpu = l.ggml_backend_dev_buffer_type(cpuDev) as Ptr
  out.push({ name: String(l.ggml_backend_buft_name(cpu)), buft: cpu, dev: cpuDev })
  return out
}

/** A GPU layer's buffer types (make_gpu_buft_list): the device's, its extra types, then the CPU list as fallback. */
export function gpuBufferTypes (gpuDev: Ptr): BufferTypeChoice[] {
  const l = ggml()
  const own = l.ggml_backend_dev_buffer_type(gpuDev) as Ptr
  return [{ name: String(l.ggml_backend_buft_name(own)), buft: own, dev: gpuDev }, ...extraBufferTypes(gpuDev), ...cpuBufferTypes(gpuDev)]
}

/** The device's default (device-memory) buffer type. */
export function deviceBufferType (dev: Ptr): Ptr { return ggml().ggml_backend_dev_buffer_type(dev) as Ptr }

/** The device's host (pinned) buffer type, else plain CPU: where llama.cpp puts the CPU's compute buffer next to a GPU. */
export function hostBufferType (gpuDev: Ptr): Ptr {
  const l = ggml()
  const host = l.ggml_backend_dev_host_buffer_type(gpuDev) as Ptr | null
  return host !== null && host !== 0n ? host : l.ggml_backend_dev_buffer_type(cpuDev) as Ptr
}

/** A backend (stream) on a GPU device. */
export function newDeviceBackend (dev: Ptr): Ptr {
  const be = ggml().ggml_backend_dev_init(dev, null) as Ptr | null
  if (be === null || be === 0n) throw new NativeCallError(`ggml_backend_dev_init(${String(ggml().ggml_backend_dev_name(dev))}) failed`)
  return be
}

/** The op a weight feeds (llama.cpp's llm_tensor_info op; a `bias` of a mul_mat_id weight is add_id). */
export type WeightOp = 'mul_mat' | 'get_rows' | 'mul' | 'add' | 'mul_mat_id' | 'add_id' | 'scale'

/**
 * llama.cpp's weight_buft_supported(): build the op the weight is used in (with 512 rows of input; for
 * mul_mat_id / add_id, `nExpertUsed` ids per row),
 * give the weight a dummy buffer of the candidate type, ask `dev` (the device the buffer type belongs to). `w` must have no buffer yet.
 */
export function weightBufferTypeSupported (w: Tensor, op: WeightOp, buft: Ptr, nExpertUsed = 0, dev: Ptr = cpuDev): boolean {
  const l = ggml()
  const ctx = newContext(8)
  try {
    const ne = tensorNe(w)
    let opTensor: Ptr
    if (op === 'mul_mat_id' || op === 'add_id') {
      // n_expert_used_max() ids per token, 512 tokens
      if (!(nExpertUsed > 0)) throw new NativeCallError(`a ${op} weight needs expert_used_count > 0`)
      const ids = newTensor(ctx, GGML_TYPE.I32, [nExpertUsed, 512])
      opTensor = op === 'mul_mat_id'
        ? l.ggml_mul_mat_id(ctx, w, newTensor(ctx, GGML_TYPE.F32, [ne[0], nExpertUsed, 512]), ids)
        : l.ggml_add_id(ctx, newTensor(ctx, GGML_TYPE.F32, [ne[0], nExpertUsed, 512]), w, ids)
    } else if (op === 'scale') {
      opTensor = l.ggml_scale(ctx, w, 1)
    } else if (op === 'mul_mat') {
      opTensor = l.ggml_mul_mat(ctx, w, newTensor(ctx, GGML_TYPE.F32, [ne[0], 512, ne[2], ne[3]]))
    } else if (op === 'get_rows') {
      opTensor = l.ggml_get_rows(ctx, w, newTensor(ctx, GGML_TYPE.I32, [512]))
    } else {
      const a = newTensor(ctx, GGML_TYPE.F32, ne)
      opTensor = op === 'mul' ? l.ggml_mul(ctx, a, w) : l.ggml_add(ctx, a, w)
    }
    const dummy = l.ggml_backend_buft_alloc_buffer(buft, 0) as Ptr
    setTensorBuffer(w, dummy)
    const ok = l.ggml_backend_dev_supports_op(dev, opTensor) as boolean
    setTensorBuffer(w, 0n)
    l.ggml_backend_buffer_free(dummy)
    return ok
  } finally {
    freeContext(ctx)
  }
}

/** Allocates every tensor of `ctx` in one buffer of type `buft`; returns the buffer. */
export function allocContextTensors (ctx: Ptr, buft: Ptr, weights: boolean): Ptr {
  const l = ggml()
  const buf = l.ggml_backend_alloc_ctx_tensors_from_buft(ctx, buft) as Ptr | null
  if (buf === null || buf === 0n) throw new NativeCallError('ggml_backend_alloc_ctx_tensors_from_buft failed (out of memory?)')
  if (weights) l.ggml_backend_buffer_set_usage(buf, BUFFER_USAGE_WEIGHTS)
  // host memory of the CPU backend (plain CPU buffers name no device; REPACK / AMX name the CPU), untouched so far: huge pages when it is filled
  const dev = l.ggml_backend_buft_get_device(buft) as Ptr | null
  if ((dev === null || dev === 0n || dev === cpuDev) && l.ggml_backend_buffer_is_host(buf) === true) {
    adviseHugePages(l.ggml_backend_buffer_get_base(buf) as Ptr, Number(l.ggml_backend_buffer_get_size(buf)))
  }
  live.set(buf, { buft: String(l.ggml_backend_buft_name(buft)), bytes: Number(l.ggml_backend_buffer_get_size(buf)) })
  return buf
}

/** weight and KV buffers allocated and not yet freed, by buffer */
const live = new Map<Ptr, { buft: string, bytes: number }>()

/** Bytes of the weight / KV buffers alive now, per buffer type name (e.g. "Vulkan0", "CPU"): what dispose must return. */
export function liveBufferBytes (): Map<string, number> {
  const out = new Map<string, number>()
  for (const { buft, bytes } of live.values()) out.set(buft, (out.get(buft) ?? 0) + bytes)
  return out
}

export function bufferSize (buf: Ptr): number { return Number(ggml().ggml_backend_buffer_get_size(buf)) }
export function clearBuffer (buf: Ptr, value: number): void { ggml().ggml_backend_buffer_clear(buf, value) }
export function freeBuffer (buf: Ptr): void { live.delete(buf); ggml().ggml_backend_buffer_free(buf) }

/** Copies host bytes into a tensor (always through the backend: some buffer types re-layout data). */
export function tensorSet (t: Ptr, data: ArrayBufferView, offset = 0): void {
  ggml().ggml_backend_tensor_set(t, data, offset, data.byteLength)
}

export function tensorGet (t: Ptr, out: ArrayBufferView, offset = 0): void {
  ggml().ggml_backend_tensor_get(t, out, offset, out.byteLength)
}

/** A CPU backend with its own thread count. */
export function newCpuBackend (threads: number): Ptr {
  const l = ggml()
  const be = l.ggml_backend_init_by_type(DEVICE_TYPE_CPU, null) as Ptr | null
  if (be === null || be === 0n) throw new NativeCallError('ggml_backend_init_by_type(CPU) failed')
  const reg = l.ggml_backend_dev_backend_reg(cpuDev) as Ptr
  const fnPtr = l.ggml_backend_reg_get_proc_address(reg, 'ggml_backend_set_n_threads') as Ptr | null
  if (fnPtr === null || fnPtr === 0n) throw new NativeLibraryError('CPU backend has no ggml_backend_set_n_threads')
  const setThreads = l.koffi.decode(fnPtr, l.setNThreadsProto as never) as (be: Ptr, n: number) => void
  setThreads(be, threads)
  return be
}

export function freeBackend (be: Ptr): void { ggml().ggml_backend_free(be) }

export function newGallocr (): Ptr {
  const l = ggml()
  return l.ggml_gallocr_new(l.ggml_backend_dev_buffer_type(cpuDev)) as Ptr
}

export function freeGallocr (g: Ptr): void { advisedCompute.delete(g); ggml().ggml_gallocr_free(g) }

/** the compute buffer each gallocr last had advised (native/huge-pages.ts) */
const advisedCompute = new Map<Ptr, Ptr>()

export function gallocrAlloc (g: Ptr, graph: Ptr): void {
  const l = ggml()
  if (l.ggml_gallocr_alloc_graph(g, graph) !== true) throw new NativeCallError('ggml_gallocr_alloc_graph failed (out of memory?)')
  // a new compute buffer (the graph's last node lives in it) is untouched until the graph runs: huge pages too
  const n = Number(l.ggml_graph_n_nodes(graph))
  if (n === 0) return
  const buf = new DataView(l.koffi.view(l.ggml_graph_node(graph, n - 1) as Ptr, OFF.size)).getBigUint64(OFF.buffer, true)
  if (buf === 0n || advisedCompute.get(g) === buf) return
  advisedCompute.set(g, buf)
  adviseHugePages(l.ggml_backend_buffer_get_base(buf) as Ptr, Number(l.ggml_backend_buffer_get_size(buf)))
}

export function gallocrSize (g: Ptr): number { return Number(ggml().ggml_gallocr_get_buffer_size(g, 0)) }

let computeAsync: ((be: Ptr, graph: Ptr) => Promise<number>) | undefined

/** Runs a graph on a koffi worker thread: the event loop keeps running. */
export async function graphCompute (backend: Ptr, graph: Ptr): Promise<void> {
  computeAsync ??= promisify(ggml().ggml_backend_graph_compute.async) as (be: Ptr, graph: Ptr) => Promise<number>
  const status = await computeAsync(backend, graph)
  if (status !== 0) throw new NativeCallError(`ggml_backend_graph_compute returned status ${status}`)
}
