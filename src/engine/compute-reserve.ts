/**
 * Worst-case compute buffers for a GPU shard's scheduler, reserved before any graph over a KV store generation runs
 * (llama.cpp's llama_context reserves its largest graph the same way, before the first decode).
 *
 * Why: with ggml_backend_sched over Vulkan, letting the compute buffers grow after graphs have computed on them (a
 * small decode graph first, then a 300-token prefill over the whole store) corrupts the host heap: the old buffers
 * are freed and reallocated while the device still refers to them, and Node aborts with glibc's "corrupted
 * double-linked list" (lavapipe's device memory lies on the host heap). Reserving the largest graphs first means
 * later graphs fit in the buffers they find and never reallocate them.
 */
import { UBATCH } from './batch-step.js'
import { ForwardGraph } from './forward-graph.js'
import type { GraphKey } from './forward-graph.js'
import type { KvStore } from './kv-store.js'
import type { ShardRuntime } from './shard-runtime.js'

/** Reserves each KV store generation's worst-case graphs once, before the first graph over it (GPU shards only). */
export class ComputeReserve {
  private generation = -1

  /** @param maxContext the largest padded context of the store's live sequences (the batch scheduler's row budget) */
  ensure (shard: ShardRuntime, store: KvStore, key: Pick<GraphKey, 'kind' | 'generation' | 'nCtxSeq'>, maxContext: number): void {
    if (shard.gpu === undefined || this.generation === store.generation) return
    reserveComputeBuffers(shard, store, key, maxContext)
    this.generation = store.generation
  }
}

/**
 * Allocates (and frees) the largest graphs a step over `store` builds: UBATCH rows over min(cells, maxContext),
 * and — when the store holds more cells than the largest context — the fewer rows a step then takes over all of them.
 * @param maxContext the largest padded context of the store's live sequences (the batch scheduler's row budget)
 */
export function reserveComputeBuffers (shard: ShardRuntime, store: KvStore, key: Pick<GraphKey, 'kind' | 'generation' | 'nCtxSeq'>, maxContext: number): void {
  const cells = store.cells
  const rowsAll = cells > maxContext ? Math.max(1, Math.floor(UBATCH * maxContext / cells)) : UBATCH
  const shapes = [{ n: UBATCH, nKv: Math.min(cells, maxContext) }, ...(rowsAll < UBATCH ? [{ n: rowsAll, nKv: cells }] : [])]
  for (const { n, nKv } of shapes) {
    // last shard: one logits row (a step that asks for every row's logits may still grow the buffer)
    const k: GraphKey = { ...key, nTokens: n, nKv, nKvSwa: store.swaCells, nOut: shard.isLast ? 1 : n, spans: '' }
    new ForwardGraph(shard, store, k).free()
  }
}
