import type { ArchSpec } from './arch/arch-spec.js'
import type { ComputeQueue } from './compute-queue.js'
import type { HParams } from './hparams.js'
import type { Ptr, Tensor } from './native/ggml.js'
import type { LayerRange, ShardOptions } from './types.js'

/** What sessions and graphs need from a loaded shard. */
export interface ShardRuntime {
  readonly description: { hparams: HParams, arch: ArchSpec }
  readonly options: ShardOptions
  readonly range: LayerRange
  readonly isFirst: boolean
  readonly isLast: boolean
  /** weights by GGUF name (the tied output copy is 'output.weight') */
  readonly weights: ReadonlyMap<string, Tensor>
  readonly backend: Ptr
  readonly queue: ComputeQueue
}
