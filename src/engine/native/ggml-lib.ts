/**
 * The ONE file that declares koffi bindings into ggml (the shared libraries shipped by node-llama-cpp 3.22.1).
 * Everything else goes through the typed wrappers in ggml.ts. Pointers are koffi BigInts.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import koffi from 'koffi'
import type { LibraryHandle } from 'koffi'
import { NativeLibraryError } from '../../shared/errors/engine-errors.js'

export type Ptr = bigint

/** node-llama-cpp release whose ggml binaries this binding (and the layout checks in ggml.ts) was written for */
export const PINNED_VERSION = '3.22.1'

const PROTOS = {
  // ggml-base: contexts, tensors, ops
  ggml_init: 'void *ggml_init(ggml_init_params params)',
  ggml_free: 'void ggml_free(void *ctx)',
  ggml_tensor_overhead: 'size_t ggml_tensor_overhead()',
  ggml_graph_overhead_custom: 'size_t ggml_graph_overhead_custom(size_t size, bool grads)',
  ggml_new_tensor: 'void *ggml_new_tensor(void *ctx, int type, int n_dims, const int64_t *ne)',
  ggml_set_name: 'void *ggml_set_name(void *t, const char *name)',
  ggml_get_name: 'const char *ggml_get_name(void *t)',
  ggml_nbytes: 'size_t ggml_nbytes(void *t)',
  ggml_type_name: 'const char *ggml_type_name(int type)',
  ggml_type_size: 'size_t ggml_type_size(int type)',
  ggml_blck_size: 'int64_t ggml_blck_size(int type)',
  ggml_row_size: 'size_t ggml_row_size(int type, int64_t ne)',
  ggml_get_type_traits: 'const ggml_type_traits *ggml_get_type_traits(int type)',
  ggml_quantize_requires_imatrix: 'bool ggml_quantize_requires_imatrix(int type)',
  ggml_op_name: 'const char *ggml_op_name(int op)',
  ggml_set_input: 'void ggml_set_input(void *t)',
  ggml_set_output: 'void ggml_set_output(void *t)',
  ggml_get_rows: 'void *ggml_get_rows(void *ctx, void *a, void *b)',
  ggml_mul_mat: 'void *ggml_mul_mat(void *ctx, void *a, void *b)',
  ggml_add: 'void *ggml_add(void *ctx, void *a, void *b)',
  ggml_mul: 'void *ggml_mul(void *ctx, void *a, void *b)',
  ggml_rms_norm: 'void *ggml_rms_norm(void *ctx, void *a, float eps)',
  // ops for dense families (gemma2/3, phi3, mistral3): add below
  ggml_tanh: 'void *ggml_tanh(void *ctx, void *a)',
  ggml_swiglu: 'void *ggml_swiglu(void *ctx, void *a)',

  // end of dense-family ops
  ggml_rope_ext: 'void *ggml_rope_ext(void *ctx, void *a, void *b, void *c, int n_dims, int mode, int n_ctx_orig, float freq_base, float freq_scale, float ext_factor, float attn_factor, float beta_fast, float beta_slow)',
  ggml_reshape_2d: 'void *ggml_reshape_2d(void *ctx, void *a, int64_t ne0, int64_t ne1)',
  ggml_reshape_3d: 'void *ggml_reshape_3d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2)',
  ggml_view_2d: 'void *ggml_view_2d(void *ctx, void *a, int64_t ne0, int64_t ne1, size_t nb1, size_t offset)',
  ggml_view_4d: 'void *ggml_view_4d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3, size_t nb1, size_t nb2, size_t nb3, size_t offset)',
  ggml_permute: 'void *ggml_permute(void *ctx, void *a, int a0, int a1, int a2, int a3)',
  ggml_transpose: 'void *ggml_transpose(void *ctx, void *a)',
  // ops for mixture of experts (build_moe_ffn, qwen3moe, mixtral, glm4moe, gpt-oss): add below
  ggml_mul_mat_id: 'void *ggml_mul_mat_id(void *ctx, void *as, void *b, void *ids)',
  ggml_add_id: 'void *ggml_add_id(void *ctx, void *a, void *b, void *ids)',
  ggml_argsort_top_k: 'void *ggml_argsort_top_k(void *ctx, void *a, int k)',
  ggml_soft_max: 'void *ggml_soft_max(void *ctx, void *a)',
  ggml_sigmoid: 'void *ggml_sigmoid(void *ctx, void *a)',
  ggml_sum_rows: 'void *ggml_sum_rows(void *ctx, void *a)',
  ggml_clamp: 'void *ggml_clamp(void *ctx, void *a, float min, float max)',
  ggml_div: 'void *ggml_div(void *ctx, void *a, void *b)',
  ggml_scale: 'void *ggml_scale(void *ctx, void *a, float s)',
  ggml_fill: 'void *ggml_fill(void *ctx, void *a, float c)',
  ggml_view_3d: 'void *ggml_view_3d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2, size_t nb1, size_t nb2, size_t offset)',
  ggml_reshape_4d: 'void *ggml_reshape_4d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)',
  ggml_repeat_4d: 'void *ggml_repeat_4d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)',
  ggml_cont: 'void *ggml_cont(void *ctx, void *a)',
  ggml_silu: 'void *ggml_silu(void *ctx, void *a)',
  ggml_gelu: 'void *ggml_gelu(void *ctx, void *a)',
  ggml_geglu_split: 'void *ggml_geglu_split(void *ctx, void *a, void *b)',
  ggml_swiglu_oai: 'void *ggml_swiglu_oai(void *ctx, void *a, void *b, float alpha, float limit)',
  ggml_soft_max_add_sinks: 'void ggml_soft_max_add_sinks(void *a, void *sinks)',
  ggml_flash_attn_ext_add_sinks: 'void ggml_flash_attn_ext_add_sinks(void *a, void *sinks)',
  // end of MoE ops
  ggml_cont_2d: 'void *ggml_cont_2d(void *ctx, void *a, int64_t ne0, int64_t ne1)',
  ggml_soft_max_ext: 'void *ggml_soft_max_ext(void *ctx, void *a, void *mask, float scale, float max_bias)',
  ggml_flash_attn_ext: 'void *ggml_flash_attn_ext(void *ctx, void *q, void *k, void *v, void *mask, float scale, float max_bias, float softcap)',
  ggml_flash_attn_ext_set_n_kv_max: 'void ggml_flash_attn_ext_set_n_kv_max(void *a, int32_t n)',
  ggml_prec_set_acc: 'bool ggml_prec_set_acc(void *a, int prec)',
  ggml_swiglu_split: 'void *ggml_swiglu_split(void *ctx, void *a, void *b)',
  ggml_set_rows: 'void *ggml_set_rows(void *ctx, void *a, void *b, void *c)',
  // ops for deepseek2 (multi-head latent attention): add below
  ggml_concat: 'void *ggml_concat(void *ctx, void *a, void *b, int dim)',
  ggml_rope_set_offset: 'void *ggml_rope_set_offset(void *a, int n_offs)',

  // end of deepseek2 ops
  ggml_new_graph_custom: 'void *ggml_new_graph_custom(void *ctx, size_t size, bool grads)',
  ggml_build_forward_expand: 'void ggml_build_forward_expand(void *g, void *t)',
  ggml_graph_n_nodes: 'int ggml_graph_n_nodes(void *g)',
  ggml_graph_node: 'void *ggml_graph_node(void *g, int i)',
  ggml_quantize_chunk: 'size_t ggml_quantize_chunk(int type, const float *src, void *dst, int64_t start, int64_t nrows, int64_t n_per_row, const float *imatrix)',
  ggml_quantize_init: 'void ggml_quantize_init(int type)',
  // gguf writer (scripts/make-model.ts)
  gguf_init_empty: 'void *gguf_init_empty()',
  gguf_init_from_file: 'void *gguf_init_from_file(const char *fname, gguf_init_params params)',
  gguf_free: 'void gguf_free(void *ctx)',
  gguf_set_kv: 'void gguf_set_kv(void *ctx, void *src)',
  gguf_remove_key: 'int64_t gguf_remove_key(void *ctx, const char *key)',
  gguf_set_val_u32: 'void gguf_set_val_u32(void *ctx, const char *key, uint32_t val)',
  gguf_set_val_f32: 'void gguf_set_val_f32(void *ctx, const char *key, float val)',
  gguf_set_val_str: 'void gguf_set_val_str(void *ctx, const char *key, const char *val)',
  gguf_set_val_bool: 'void gguf_set_val_bool(void *ctx, const char *key, bool val)',
  gguf_set_val_i32: 'void gguf_set_val_i32(void *ctx, const char *key, int32_t val)',
  gguf_set_val_u16: 'void gguf_set_val_u16(void *ctx, const char *key, uint16_t val)',
  gguf_set_arr_data: 'void gguf_set_arr_data(void *ctx, const char *key, int type, const void *data, size_t n)',
  gguf_add_tensor: 'void gguf_add_tensor(void *ctx, void *tensor)',
  gguf_write_to_file: 'bool gguf_write_to_file(void *ctx, const char *fname, bool only_meta)',
  gguf_get_n_kv: 'int64_t gguf_get_n_kv(void *ctx)',
  gguf_get_key: 'const char *gguf_get_key(void *ctx, int64_t id)',
  // ggml-backend
  ggml_backend_load_all_from_path: 'void ggml_backend_load_all_from_path(const char *dir)',
  ggml_backend_init_by_type: 'void *ggml_backend_init_by_type(int type, const char *params)',
  ggml_backend_free: 'void ggml_backend_free(void *backend)',
  ggml_backend_dev_by_type: 'void *ggml_backend_dev_by_type(int type)',
  ggml_backend_dev_count: 'size_t ggml_backend_dev_count()',
  ggml_backend_dev_get: 'void *ggml_backend_dev_get(size_t i)',
  ggml_backend_dev_type: 'int ggml_backend_dev_type(void *dev)',
  ggml_backend_dev_name: 'const char *ggml_backend_dev_name(void *dev)',
  ggml_backend_dev_backend_reg: 'void *ggml_backend_dev_backend_reg(void *dev)',
  ggml_backend_dev_buffer_type: 'void *ggml_backend_dev_buffer_type(void *dev)',
  ggml_backend_dev_supports_op: 'bool ggml_backend_dev_supports_op(void *dev, void *op)',
  ggml_backend_reg_get_proc_address: 'void *ggml_backend_reg_get_proc_address(void *reg, const char *name)',
  ggml_backend_buft_name: 'const char *ggml_backend_buft_name(void *buft)',
  ggml_backend_buft_alloc_buffer: 'void *ggml_backend_buft_alloc_buffer(void *buft, size_t size)',
  ggml_backend_buffer_free: 'void ggml_backend_buffer_free(void *buf)',
  ggml_backend_buffer_clear: 'void ggml_backend_buffer_clear(void *buf, uint8_t value)',
  ggml_backend_buffer_get_size: 'size_t ggml_backend_buffer_get_size(void *buf)',
  ggml_backend_buffer_get_base: 'void *ggml_backend_buffer_get_base(void *buf)',
  ggml_backend_buffer_is_host: 'bool ggml_backend_buffer_is_host(void *buf)',
  ggml_backend_buft_get_device: 'void *ggml_backend_buft_get_device(void *buft)',
  ggml_backend_buffer_set_usage: 'void ggml_backend_buffer_set_usage(void *buf, int usage)',
  ggml_backend_alloc_ctx_tensors_from_buft: 'void *ggml_backend_alloc_ctx_tensors_from_buft(void *ctx, void *buft)',
  ggml_backend_tensor_set: 'void ggml_backend_tensor_set(void *t, const void *data, size_t offset, size_t size)',
  ggml_backend_tensor_get: 'void ggml_backend_tensor_get(void *t, _Out_ void *data, size_t offset, size_t size)',
  ggml_backend_graph_compute: 'int ggml_backend_graph_compute(void *backend, void *graph)',
  ggml_gallocr_new: 'void *ggml_gallocr_new(void *buft)',
  ggml_gallocr_free: 'void ggml_gallocr_free(void *galloc)',
  ggml_gallocr_alloc_graph: 'bool ggml_gallocr_alloc_graph(void *galloc, void *graph)',
  ggml_gallocr_get_buffer_size: 'size_t ggml_gallocr_get_buffer_size(void *galloc, int buffer_id)',
  // devices and the multi-backend scheduler (GPU offload): native/devices.ts, native/sched.ts
  ggml_backend_dev_description: 'const char *ggml_backend_dev_description(void *dev)',
  ggml_backend_dev_memory: 'void ggml_backend_dev_memory(void *dev, _Out_ size_t *free, _Out_ size_t *total)',
  ggml_backend_dev_init: 'void *ggml_backend_dev_init(void *dev, const char *params)',
  ggml_backend_dev_host_buffer_type: 'void *ggml_backend_dev_host_buffer_type(void *dev)',
  ggml_backend_dev_supports_buft: 'bool ggml_backend_dev_supports_buft(void *dev, void *buft)',
  ggml_backend_reg_name: 'const char *ggml_backend_reg_name(void *reg)',
  ggml_backend_load: 'void *ggml_backend_load(const char *path)',
  ggml_backend_supports_op: 'bool ggml_backend_supports_op(void *backend, void *op)',
  ggml_backend_sched_new: 'void *ggml_backend_sched_new(void **backends, void **bufts, int n_backends, size_t graph_size, bool parallel, bool op_offload)',
  ggml_backend_sched_free: 'void ggml_backend_sched_free(void *sched)',
  ggml_backend_sched_reset: 'void ggml_backend_sched_reset(void *sched)',
  ggml_backend_sched_alloc_graph: 'bool ggml_backend_sched_alloc_graph(void *sched, void *graph)',
  ggml_backend_sched_graph_compute: 'int ggml_backend_sched_graph_compute(void *sched, void *graph)',
  ggml_backend_sched_set_tensor_backend: 'void ggml_backend_sched_set_tensor_backend(void *sched, void *node, void *backend)',
  ggml_backend_sched_get_buffer_size: 'size_t ggml_backend_sched_get_buffer_size(void *sched, void *backend)',
  ggml_backend_sched_get_n_splits: 'int ggml_backend_sched_get_n_splits(void *sched)'
} as const

export type GgmlFn = { (...args: any[]): any, async: (...args: any[]) => void }
export type GgmlLib = { [K in keyof typeof PROTOS]: GgmlFn } & {
  libDir: string
  pkg: GgmlPackage
  setNThreadsProto: unknown
  getExtraBuftsProto: unknown
  koffi: typeof koffi
}

/** Which of node-llama-cpp's prebuilt binary packages the process loads ggml from (one per process). */
export type GgmlPackage = 'cpu' | 'cuda' | 'vulkan' | 'metal'

/** npm package holding the prebuilt ggml of `p` for this platform. */
export function ggmlPackageName (p: GgmlPackage): string {
  const plat = process.platform === 'darwin' ? 'mac' : process.platform
  return `@node-llama-cpp/${plat}-${process.arch}${p === 'cpu' ? '' : `-${p}`}`
}

/** Directory of the prebuilt ggml libraries of package `p`, undefined when it is not installed. */
export function findGgmlLibDir (p: GgmlPackage = 'cpu'): string | undefined {
  const req = createRequire(import.meta.url)
  const pkg = ggmlPackageName(p)
  const sub = `${process.platform === 'darwin' ? 'mac' : process.platform}-${process.arch}${p === 'cpu' ? '' : `-${p}`}`
  const candidates: string[] = []
  for (const from of [req, createRequire(req.resolve('node-llama-cpp'))]) {
    try {
      // the package exports only its entry point (dist/index.js): walk up to the package root
      let root = dirname(from.resolve(pkg))
      while (!existsSync(join(root, 'package.json')) && dirname(root) !== root) root = dirname(root)
      candidates.push(join(root, 'bins', sub))
    } catch { /* try next */ }
  }
  return candidates.find((d) => existsSync(join(d, 'libggml-base.so')))
}

/** Directory of the prebuilt ggml libraries of package `p`, resolved through the npm packages (pinned version checked). */
export function ggmlLibDir (p: GgmlPackage = 'cpu'): string {
  const pkg = ggmlPackageName(p)
  const dir = findGgmlLibDir(p)
  if (dir === undefined) throw new NativeLibraryError(`ggml libraries not found (looked for ${pkg})`)
  const version = (JSON.parse(readFileSync(join(dir, '..', '..', 'package.json'), 'utf8')) as { version?: string }).version
  if (version !== PINNED_VERSION) {
    throw new NativeLibraryError(`${pkg} is version ${String(version)}; the engine is pinned to ${PINNED_VERSION} (ggml struct layouts are version-specific)`)
  }
  return dir
}

let selected: GgmlPackage = 'cpu'

/**
 * Chooses the package ggml is loaded from; must precede the first native call (a process holds one
 * libggml-base, shared by every backend library it loads). Re-selecting the loaded package is a no-op.
 */
export function selectGgmlPackage (p: GgmlPackage): void {
  if (cached !== undefined && cached.pkg !== p) throw new NativeLibraryError(`ggml is already loaded from ${ggmlPackageName(cached.pkg)}; cannot switch to ${ggmlPackageName(p)} in this process`)
  selected = p
}

/** The package ggml is (or will be) loaded from. */
export function selectedGgmlPackage (): GgmlPackage { return cached?.pkg ?? selected }

let cached: GgmlLib | undefined

export interface TypeTraits { type_name: string | null, blck_size: number | bigint, type_size: number | bigint, is_quantized: boolean, to_float: unknown }
export interface CpuTypeTraits { from_float: unknown, vec_dot: unknown, vec_dot_type: number }

/**
 * `ggml_get_type_traits_cpu` of the CPU backend variant that ggml_backend_load_all_from_path chose (the one
 * mapped into this process, found in /proc/self/maps); undefined where that cannot be determined.
 */
export function cpuTypeTraitsFn (libDir: string): ((type: number) => CpuTypeTraits) | undefined {
  let maps: string
  try { maps = readFileSync('/proc/self/maps', 'utf8') } catch { return undefined }
  const prefix = join(realpathSync(libDir), 'libggml-cpu')
  const paths = new Set(maps.split('\n').map((line) => line.slice(line.indexOf('/'))).filter((p) => p.startsWith(prefix)))
  if (paths.size !== 1) return undefined
  const fn = koffi.load([...paths][0]!).func('const ggml_type_traits_cpu *ggml_get_type_traits_cpu(int type)')
  return (type: number) => koffi.decode(fn(type), 'ggml_type_traits_cpu') as CpuTypeTraits
}

/** Loads libggml-base + libggml once per process (from the selected package) and declares every function. */
export function loadGgmlLib (): GgmlLib {
  if (cached !== undefined) return cached
  const pkg = selected
  const libDir = ggmlLibDir(pkg)
  let base: LibraryHandle, main: LibraryHandle
  try {
    base = koffi.load(join(libDir, 'libggml-base.so'))
    // libggml.v0.5.0.so (CPU package) or libggml.<backend>.v0.5.0.so: the backend registry
    main = koffi.load(join(libDir, pkg === 'cpu' ? 'libggml.v0.5.0.so' : `libggml.${pkg}.v0.5.0.so`))
  } catch (err) {
    throw new NativeLibraryError(`cannot load ggml from ${libDir}: ${(err as Error).message}`, { cause: err })
  }
  koffi.struct('ggml_init_params', { mem_size: 'size_t', mem_buffer: 'void *', no_alloc: 'bool' })
  koffi.struct('gguf_init_params', { no_alloc: 'bool', ctx: 'void **' })
  koffi.struct('ggml_type_traits', {
    type_name: 'const char *', blck_size: 'int64_t', blck_size_interleave: 'int64_t', type_size: 'size_t',
    is_quantized: 'bool', to_float: 'void *', from_float_ref: 'void *'
  })
  koffi.struct('ggml_type_traits_cpu', { from_float: 'void *', vec_dot: 'void *', vec_dot_type: 'int', nrows: 'int64_t' })
  const lib: Record<string, unknown> = { libDir, pkg, koffi }
  for (const [name, proto] of Object.entries(PROTOS)) {
    let fn: unknown
    for (const l of [base, main]) {
      try { fn = l.func(proto); break } catch { /* not in this library */ }
    }
    if (fn === undefined) throw new NativeLibraryError(`symbol ${name} not found in ggml at ${libDir}`)
    lib[name] = fn
  }
  lib.setNThreadsProto = koffi.proto('void ggml_backend_set_n_threads_t(void *backend, int n_threads)')
  lib.getExtraBuftsProto = koffi.proto('void **ggml_backend_dev_get_extra_bufts_t(void *dev)')
  cached = lib as GgmlLib
  return cached
}
