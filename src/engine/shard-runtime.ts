import type { ArchSpec } from './arch/arch-spec.js'
import type { ComputeQueue } from './compute-queue.js'
import type { HParams } from './hparams.js'
import type { Ptr, Tensor } from './native/ggml.js'
import type { ShardPlacement } from './shard-placement.js'
import type { LayerRange, ShardOptions } from './types.js'

/** A shard's GPU device, its backend and which layers it runs. */
export interface ShardGpu { dev: Ptr, backend: Ptr, placement: ShardPlacement }

/** What sessions and graphs need from a loaded shard. */
export interface ShardRuntime {
  readonly description: { hparams: HParams, arch: ArchSpec }
  readonly options: ShardOptions
  readonly range: LayerRange
  readonly isFirst: boolean
  readonly isLast: boolean
  /** weights by GGUF name (the tied output copy is 'output.weight') */
  readonly weights: ReadonlyMap<string, Tensor>
  /** the CPU backend */
  readonly backend: Ptr
  /** undefined: a CPU-only shard */
  readonly gpu: ShardGpu | undefined
  readonly queue: ComputeQueue
}
