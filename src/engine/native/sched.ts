/**
 * ggml_backend_sched over a GPU backend and the CPU backend (llama.cpp's llama_context): one graph, each op on
 * the backend holding its weights, ops the device lacks on the CPU, copies between them inserted by ggml.
 */
import { promisify } from 'node:util'
import { NativeCallError } from '../../shared/errors/engine-errors.js'
import { ggml } from './ggml.js'
import type { Ptr, Tensor } from './ggml.js'

export interface SchedBackends {
  /** the device's backend (ggml_backend_dev_init) */
  gpu: Ptr
  /** the CPU backend (last, as ggml_backend_sched_new requires) */
  cpu: Ptr
  /** compute-buffer types: the device's, then the device's host (pinned) type for the CPU (plain CPU when none) */
  gpuBuft: Ptr
  cpuBuft: Ptr
}

let computeAsync: ((sched: Ptr, graph: Ptr) => Promise<number>) | undefined

export class Sched {
  readonly ptr: Ptr
  private allocated: Ptr | undefined

  /** @param graphSize hash-set capacity: must be ≥ nodes + leafs of every graph this scheduler runs */
  constructor (readonly backends: SchedBackends, readonly graphSize: number) {
    const l = ggml()
    const p = l.ggml_backend_sched_new([backends.gpu, backends.cpu], [backends.gpuBuft, backends.cpuBuft], 2, graphSize, false, true) as Ptr | null
    if (p === null || p === 0n) throw new NativeCallError('ggml_backend_sched_new failed')
    this.ptr = p
  }

  /**
   * Assigns and allocates `graph` (llama.cpp: reset, pin tensors, alloc). `pins`: tensors forced onto a backend
   * (llama.cpp's graph callback pins each layer's "norm" to the layer's device), applied where it supports the op.
   */
  alloc (graph: Ptr, pins: ReadonlyArray<{ t: Tensor, gpu: boolean }>, maxNodes: number): void {
    const l = ggml()
    // hash set (graphSize) ≥ nodes + leafs, both ≤ the graph's capacity
    if (2 * maxNodes > this.graphSize) throw new NativeCallError(`internal: graph of ${maxNodes} nodes exceeds the scheduler's ${this.graphSize}`)
    l.ggml_backend_sched_reset(this.ptr)
    for (const { t, gpu } of pins) {
      const be = gpu ? this.backends.gpu : this.backends.cpu
      if (l.ggml_backend_supports_op(be, t) === true) l.ggml_backend_sched_set_tensor_backend(this.ptr, t, be)
    }
    if (l.ggml_backend_sched_alloc_graph(this.ptr, graph) !== true) throw new NativeCallError('ggml_backend_sched_alloc_graph failed (out of device memory?)')
    this.allocated = graph
  }

  /** Runs the allocated graph on a koffi worker thread (the event loop keeps running). */
  async compute (graph: Ptr): Promise<void> {
    if (this.allocated !== graph) throw new NativeCallError('internal: graph computed before it was allocated on the scheduler')
    computeAsync ??= promisify(ggml().ggml_backend_sched_graph_compute.async) as (sched: Ptr, graph: Ptr) => Promise<number>
    const status = await computeAsync(this.ptr, graph)
    if (status !== 0) throw new NativeCallError(`ggml_backend_sched_graph_compute returned status ${status}`)
  }

  /** graph splits of the last allocated graph (1 = one backend ran everything) */
  splits (): number { return ggml().ggml_backend_sched_get_n_splits(this.ptr) as number }

  /** compute-buffer bytes on the device and on the host */
  bufferSizes (): { gpu: number, cpu: number } {
    const l = ggml()
    return { gpu: Number(l.ggml_backend_sched_get_buffer_size(this.ptr, this.backends.gpu)), cpu: Number(l.ggml_backend_sched_get_buffer_size(this.ptr, this.backends.cpu)) }
  }

  forget (graph: Ptr): void { if (this.allocated === graph) this.allocated = undefined }

  free (): void { ggml().ggml_backend_sched_free(this.ptr) }
}
