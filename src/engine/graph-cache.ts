import type { ForwardGraph, GraphKey } from './forward-graph.js'
import type { GraphAllocator } from './graph-allocator.js'

/**
 * The forward graphs a shard's steps reuse, most recent first, at most `max`. Building one costs the event loop
 * ~0.5 ms (an 8-layer shard), and a pipeline stage alternates between its groups' graphs every step (their
 * sequences' attention spans differ), so a single cached graph was rebuilt at every step.
 *
 * On the CPU (ggml_gallocr) the graphs share one compute buffer: tensors of different graphs may overlap there, which
 * is harmless because one graph runs at a time and every run sets its inputs first. A graph whose allocation grows the
 * buffer reallocates it, and the other graphs' tensors would point into freed memory: they are freed then. A GPU
 * shard's scheduler holds the state of the last graph it allocated, so it keeps one graph, freed before the next is
 * built (as before the cache).
 */
export class GraphCache {
  private graphs: ForwardGraph[] = []

  constructor (private readonly max: number) {}

  /** the graph of the last step (tests and diagnostics) */
  get latest (): ForwardGraph | undefined { return this.graphs[0] }

  /** the cached graph of `key`, or undefined */
  get (key: GraphKey): ForwardGraph | undefined {
    const i = this.graphs.findIndex((g) => (Object.keys(key) as Array<keyof GraphKey>).every((f) => g[f] === key[f]))
    if (i < 0) return undefined
    const g = this.graphs[i]!
    if (i > 0) { this.graphs.splice(i, 1); this.graphs.unshift(g) }
    return g
  }

  /** Builds the graph of `key` (`build` allocates it on `allocator`) and caches it. */
  add (key: GraphKey, allocator: GraphAllocator, build: () => ForwardGraph): ForwardGraph {
    // graphs over an older KV store generation never run again
    this.keep((g) => g.generation === key.generation && allocator.sharesBuffers)
    const before = allocator.bufferBytes()
    const g = build()
    const after = allocator.bufferBytes()
    if (before.cpu !== after.cpu || before.gpu !== after.gpu) this.keep(() => false)
    this.graphs.unshift(g)
    this.keep((_g, i) => i < this.max)
    return g
  }

  clear (): void { this.keep(() => false) }

  private keep (pred: (g: ForwardGraph, i: number) => boolean): void {
    const kept: ForwardGraph[] = []
    this.graphs.forEach((g, i) => { if (pred(g, i)) kept.push(g); else g.free() })
    this.graphs = kept
  }
}
