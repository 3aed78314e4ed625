/**
 * Where a session's forward graphs get their compute buffers and run: a CPU-only shard uses one ggml_gallocr
 * and the CPU backend (as before GPUs); a shard with a GPU device uses ggml_backend_sched over the device and
 * the CPU, as llama.cpp's llama_context does.
 */
import { freeGallocr, gallocrAlloc, gallocrSize, graphCompute, hostBufferType, deviceBufferType, newGallocr } from './native/ggml.js'
import { Sched } from './native/sched.js'
import type { Ptr, Tensor } from './native/ggml.js'
import type { ShardRuntime } from './shard-runtime.js'

export interface GraphAllocator {
  /** allocate `graph` (capacity maxNodes); `pins` force tensors onto the device / the CPU (scheduler only) */
  alloc: (graph: Ptr, pins: ReadonlyArray<{ t: Tensor, gpu: boolean }>, maxNodes: number) => void
  compute: (graph: Ptr) => Promise<void>
  /** the graph is being freed */
  forget: (graph: Ptr) => void
  /** compute-buffer bytes now held on the device and on the host */
  bufferBytes: () => { gpu: number, cpu: number }
  /** graphs allocated one after another stay valid while the buffers do not grow (ggml_gallocr); false: only the last one (ggml_backend_sched) */
  readonly sharesBuffers: boolean
  free: () => void
}

class GallocrAllocator implements GraphAllocator {
  private readonly g = newGallocr()
  readonly sharesBuffers = true
  constructor (private readonly cpuBackend: Ptr) {}
  alloc (graph: Ptr): void { gallocrAlloc(this.g, graph) }
  async compute (graph: Ptr): Promise<void> { await graphCompute(this.cpuBackend, graph) }
  forget (): void {}
  bufferBytes (): { gpu: number, cpu: number } { return { gpu: 0, cpu: gallocrSize(this.g) } }
  free (): void { freeGallocr(this.g) }
}

class SchedAllocator implements GraphAllocator {
  readonly sharesBuffers = false
  constructor (private readonly s: Sched) {}
  alloc (graph: Ptr, pins: ReadonlyArray<{ t: Tensor, gpu: boolean }>, maxNodes: number): void { this.s.alloc(graph, pins, maxNodes) }
  async compute (graph: Ptr): Promise<void> { await this.s.compute(graph) }
  forget (graph: Ptr): void { this.s.forget(graph) }
  bufferBytes (): { gpu: number, cpu: number } { return this.s.bufferSizes() }
  free (): void { this.s.free() }
}

/** @param maxNodes the largest graph capacity the shard builds (ForwardGraph's node bound) */
export function newGraphAllocator (shard: ShardRuntime, maxNodes: number): GraphAllocator {
  const gpu = shard.gpu
  if (gpu === undefined) return new GallocrAllocator(shard.backend)
  const graphSize = 2 * maxNodes + shard.weights.size + 64
  return new SchedAllocator(new Sched({ gpu: gpu.backend, cpu: shard.backend, gpuBuft: deviceBufferType(gpu.dev), cpuBuft: hostBufferType(gpu.dev) }, graphSize))
}
