import { open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { DisposedError, throwIfAborted } from '../shared/errors/exo-error.js'
import { InvalidEngineOptionError, InvalidLayerRangeError, TruncatedGgufError, UnsupportedTensorTypeError } from '../shared/errors/engine-errors.js'
import { createLogger } from '../shared/log.js'
import { ComputeQueue } from './compute-queue.js'
import { describeModel } from './model-description.js'
import { ggmlTypeName } from './gguf/ggml-types.js'
import { allocContextTensors, bufferSize, cpuBufferTypes, cpuWeightTypes, freeBackend, freeBuffer, freeContext, gpuBufferTypes, newContext, newCpuBackend, newDeviceBackend, newTensor, tensorSet, weightBufferTypeSupported } from './native/ggml.js'
import { onDevice, resolvePlacement } from './shard-placement.js'
import { BatchScheduler } from './batch-scheduler.js'
import { ShardSessionImpl } from './shard-session.js'
import type { ModelDescription } from './model-description.js'
import type { ShardGpu, ShardRuntime } from './shard-runtime.js'
import type { Ptr, Tensor, WeightOp } from './native/ggml.js'
import type { GgufTensorInfo } from './gguf/gguf-reader.js'
import type { LayerRange, LoadedShard, ModelMetadata, SessionOptions, ShardOptions, ShardSession } from './types.js'

const log = createLogger('engine:load')
const MAX_THREADS = 512
/** bytes per read while streaming weights into plain CPU buffers */
const LOAD_CHUNK = 8 << 20

/** layer: the layer index; -1 = input (token embedding), nLayers = output */
interface Planned { loadName: string, info: GgufTensorInfo, op: WeightOp, layer: number }

/** The GGUF tensors a shard needs, under the names the graph builders use. */
function planTensors (d: ModelDescription, range: LayerRange): Planned[] {
  const isFirst = range.start === 0
  const isLast = range.end === d.hparams.nLayers
  const out: Planned[] = []
  for (const spec of d.arch.tensors(d.hparams)) {
    const info = d.gguf.tensors.get(spec.name)
    if (info === undefined) continue
    const want = spec.role === 'embedding'
      ? isFirst
      : spec.role === 'output'
        ? isLast
        : spec.layer === undefined || (spec.layer >= range.start && spec.layer < range.end)
    const layer = spec.role === 'embedding' ? -1 : spec.role === 'output' ? d.hparams.nLayers : spec.layer ?? -1
    if (want) out.push({ loadName: spec.name, info, op: spec.op, layer })
  }
  if (isLast && d.hparams.tiedOutput) {
    // llama.cpp: output = token_embd (TENSOR_DUPLICATED), a separate tensor used by mul_mat
    out.push({ loadName: 'output.weight', info: d.gguf.tensors.get('token_embd.weight')!, op: 'mul_mat', layer: d.hparams.nLayers })
  }
  return out
}

/**
 * Where in the file the tensors of shard `range` lie (the same selection `loadShard` reads): one entry
 * per tensor, `[offset, offset + bytes)`. The header's tensor table alone is read (a sparse copy whose
 * tensor data is missing will do). A peer fetcher fetches exactly these bytes. For a split model (given by
 * its first part) each range lies in `path`, the part holding that tensor.
 */
export function shardFileRanges (modelPath: string, range: LayerRange): Array<{ name: string, path: string, offset: number, bytes: number }> {
  const d = describeModel(modelPath)
  validateShardOptions({ modelPath, range, threads: 1 }, d.hparams.nLayers)
  return planTensors(d, range).map((p) => ({ name: p.info.name, path: p.info.path, offset: p.info.fileOffset, bytes: p.info.bytes }))
}

/** The files (split parts) holding the tensors of layers [start, end) — the only ones loadShard reads. */
export function shardWeightFiles (d: ModelDescription, range: LayerRange): string[] {
  return [...new Set(planTensors(d, range).map((p) => p.info.path))]
}

export function validateShardOptions (options: ShardOptions, nLayers: number): void {
  const { start, end } = options.range
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > nLayers || start >= end) throw new InvalidLayerRangeError(start, end, nLayers)
  if (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > MAX_THREADS) {
    throw new InvalidEngineOptionError(`threads must be an integer in [1, ${MAX_THREADS}], got ${options.threads}`)
  }
  if (options.flashAttention !== undefined && typeof options.flashAttention !== 'boolean') {
    throw new InvalidEngineOptionError(`flashAttention must be a boolean, got ${String(options.flashAttention)}`)
  }
  resolvePlacement(options, options.range, nLayers)
}

/** Loads the weights of layers [start, end) (plus embedding / output when first / last) into ggml buffers. */
export async function loadShard (options: ShardOptions, { signal }: { signal?: AbortSignal } = {}): Promise<LoadedShard> {
  throwIfAborted(signal)
  const d = describeModel(options.modelPath)
  validateShardOptions(options, d.hparams.nLayers)
  const planned = planTensors(d, options.range)
  // the header's types are in the pinned table (describeModel); this build's CPU backend must have their kernels too
  const kernels = cpuWeightTypes()
  const lacking = planned.find((p) => !kernels.has(p.info.type))
  if (lacking !== undefined) throw new UnsupportedTensorTypeError(lacking.info.name, lacking.info.type, ggmlTypeName(lacking.info.type), [...kernels].map(ggmlTypeName))

  const placement = resolvePlacement(options, options.range, d.hparams.nLayers)
  const gpuDev = placement.device?.dev
  // llama.cpp's buft lists: CPU layers (and the input) use the CPU list, offloaded layers the device's
  const cpuList = cpuBufferTypes(gpuDev)
  const gpuList = gpuDev === undefined ? cpuList : gpuBufferTypes(gpuDev)
  // one no_alloc context per buffer type, tensors created in file order
  const groups = new Map<Ptr, { ctx: Ptr, items: Array<{ p: Planned, t: Tensor }> }>()
  const probeCtx = newContext(planned.length + 1)
  const decided = new Map<string, Ptr>()
  const contexts: Ptr[] = [probeCtx]
  const buffers: Ptr[] = []
  const weights = new Map<string, Tensor>()
  try {
    for (const p of planned) {
      const gpu = onDevice(placement, p.layer, d.hparams.nLayers)
      const bufts = gpu ? gpuList : cpuList
      const key = `${gpu ? 'gpu' : 'cpu'}:${p.info.type}:${p.info.ne.join('x')}:${p.op}`
      let buft = decided.get(key)
      if (buft === undefined) {
        const probe = newTensor(probeCtx, p.info.type, p.info.ne)
        buft = bufts.find((b) => weightBufferTypeSupported(probe, p.op, b.buft, d.hparams.nExpertUsed, b.dev))?.buft ?? bufts[bufts.length - 1]!.buft
        decided.set(key, buft)
      }
      let grp = groups.get(buft)
      if (grp === undefined) {
        grp = { ctx: newContext(planned.length), items: [] }
        contexts.push(grp.ctx)
        groups.set(buft, grp)
      }
      const t = newTensor(grp.ctx, p.info.type, p.info.ne, p.loadName)
      grp.items.push({ p, t })
      weights.set(p.loadName, t)
    }
    let weightBytes = 0
    for (const [buft, grp] of groups) {
      const buf = allocContextTensors(grp.ctx, buft, true)
      buffers.push(buf)
      weightBytes += bufferSize(buf)
    }
    const plainCpu = cpuList[cpuList.length - 1]!.buft
    // a split model: each tensor is read from the part holding it; only parts holding this shard's tensors are opened
    const files = new Map<string, FileHandle>()
    try {
      // plain CPU buffers take partial writes: stream through one small scratch buffer; other buffer types
      // (e.g. CPU_REPACK re-layouts) need each tensor in one tensor_set call
      const scratch = Buffer.allocUnsafe(LOAD_CHUNK)
      for (const [buft, grp] of groups) {
        for (const { p, t } of grp.items) {
          throwIfAborted(signal)
          let fh = files.get(p.info.path)
          if (fh === undefined) {
            fh = await open(p.info.path, 'r')
            files.set(p.info.path, fh)
          }
          const whole = buft !== plainCpu
          const buf = whole ? Buffer.allocUnsafe(p.info.bytes) : scratch
          for (let off = 0; off < p.info.bytes; off += buf.length) {
            const n = Math.min(buf.length, p.info.bytes - off)
            const { bytesRead } = await fh.read(buf, 0, n, p.info.fileOffset + off)
            if (bytesRead !== n) throw new TruncatedGgufError(`${p.info.path} changed while loading (short read of ${p.info.name})`)
            tensorSet(t, buf.subarray(0, n), off)
          }
        }
      }
    } finally {
      for (const fh of files.values()) await fh.close()
    }
    const backend = newCpuBackend(options.threads)
    const gpuBackend = gpuDev === undefined ? undefined : newDeviceBackend(gpuDev)
    log.debug({ model: options.modelPath, range: options.range, tensors: planned.length, files: [...files.keys()], weightBytes, device: placement.device?.name, firstGpuLayer: placement.firstGpuLayer, bufferTypes: [...groups.keys()].map((b) => gpuList.find((x) => x.buft === b)?.name) }, 'shard loaded')
    const gpu = gpuDev === undefined || gpuBackend === undefined ? undefined : { dev: gpuDev, backend: gpuBackend, placement }
    return new LoadedShardImpl(d, options, weights, weightBytes, [...files.keys()], backend, gpu, contexts, buffers)
  } catch (err) {
    for (const b of buffers) freeBuffer(b)
    for (const c of contexts) freeContext(c)
    throw err
  }
}

class LoadedShardImpl implements LoadedShard, ShardRuntime {
  readonly metadata: ModelMetadata
  readonly range: LayerRange
  readonly isFirst: boolean
  readonly isLast: boolean
  readonly queue = new ComputeQueue()
  readonly scheduler: BatchScheduler = new BatchScheduler(this)
  private readonly sessions = new Set<ShardSessionImpl>()
  private disposed = false

  constructor (readonly description: ModelDescription, readonly options: ShardOptions, readonly weights: Map<string, Tensor>,
    readonly weightBytes: number, readonly weightFiles: readonly string[], readonly backend: Ptr, readonly gpu: ShardGpu | undefined,
    private readonly contexts: Ptr[], private readonly buffers: Ptr[]) {
    this.metadata = description.metadata
    this.range = { ...options.range }
    this.isFirst = options.range.start === 0
    this.isLast = options.range.end === description.hparams.nLayers
  }

  createSession (options: SessionOptions): ShardSession {
    if (this.disposed) throw new DisposedError('LoadedShard')
    const s = new ShardSessionImpl(this, this.scheduler, options, () => this.sessions.delete(s))
    this.sessions.add(s)
    this.scheduler.register(s)
    return s
  }

  async dispose (): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    for (const s of [...this.sessions]) s.dispose()
    this.scheduler.stop()
    await this.queue.idle()
    this.scheduler.dispose()
    freeBackend(this.backend)
    if (this.gpu !== undefined) freeBackend(this.gpu.backend)
    for (const b of this.buffers) freeBuffer(b)
    for (const c of this.contexts) freeContext(c)
  }
}
