import { hostname } from 'node:os'
import { throwIfAborted } from '../shared/errors/exo-error.js'
import { ContextTooLongError, InvalidGenerationRequestError } from '../shared/errors/generation-errors.js'
import { createLogger } from '../shared/log.js'
import { Tokenizer } from '../engine/tokenizer.js'
import { splitLayersEvenly } from './layer-split.js'
import { nodeGpuLayers, shardGpuOptions } from './gpu-offload.js'
import type { GpuOffload } from './gpu-offload.js'
import { generateLocal } from './local-generator.js'
import { createGrammarConstraint } from '../engine/grammar/grammar-constraint.js'
import { ModelRegistry } from './model-registry.js'
import { sessionChainCache, sessionKvBytes, sumPrefixStats } from './prefix-reuse.js'
import type { PrefixTotals } from './prefix-reuse.js'
import type { PrefixCache } from './prefix-cache.js'
import { AdmissionGate, DEFAULT_SEQUENCES, maxSequencesFor } from './admission-gate.js'
import type { LoadedShard, ModelMetadata, ShardSession } from '../engine/types.js'
import type { GenerationEvent, InferenceRequest, InferenceService, ModelInfo } from '../shared/inference.js'
import type { ModelEntry, ModelRegistryOptions } from './model-registry.js'
import type { ShardEngine } from './shard-engine.js'

const log = createLogger('node:local-inference')
const DISPOSE_GRACE_MS = 2000

export interface LocalInferenceServiceOptions extends ModelRegistryOptions {
  /** the ggml shard engine (src/node/ggml-shard-engine.ts) */
  engine: ShardEngine
  /** CPU threads per shard. Default 1 (see DESIGN.md: more threads collapse on small machines). */
  threads?: number
  /** split every model's layers evenly into this many in-process shards. Default 1. */
  shards?: number
  /**
   * Flash attention. Default true: llama.cpp's "auto" turns it on for CPU, and greedy text matches
   * node-llama-cpp's only with the same setting. Every stage of a pipeline must use the same value.
   */
  flashAttention?: boolean
  /** cap on KV cells per request; default the model's context length */
  contextSize?: number
  /** prompt tokens per forward pass during prefill. Default 512. */
  prefillChunk?: number
  /** this node's name in ModelInfo.heldBy. Default the host name. */
  nodeName?: string
  /**
   * The node's memory budget: the KV of finished requests is retained for prefix reuse while loaded weights,
   * running requests' KV and retained KV fit in it (least recently used evicted first).
   */
  memoryBudgetBytes?: number
  /** fixed cap on retained KV bytes instead (0 = no prefix reuse). Default without a budget: DEFAULT_PREFIX_CACHE_BYTES. */
  prefixCacheBytes?: number
  /** GPU offload of the node's last layers (`--gpu-layers`); undefined = CPU-only shards */
  gpu?: GpuOffload
  /** sequences run at once; default from the memory budget (full-context KV per sequence), else DEFAULT_SEQUENCES */
  maxSequences?: number
  /** requests waiting for a slot beyond that (more → ServerBusyError, HTTP 429); default maxSequences */
  maxQueue?: number
}

/** Retained-KV cap of a service given neither a memory budget nor prefixCacheBytes. */
export const DEFAULT_PREFIX_CACHE_BYTES = 256 * 2 ** 20

interface LoadedModel {
  metadata: ModelMetadata
  tokenizer: Promise<Tokenizer>
  shards?: Promise<LoadedShard[]>
  /** retained KV of finished requests on `shards` (prefix reuse) */
  prefix?: PrefixCache<readonly ShardSession[]>
}

/**
 * `InferenceService` for one node running whole models locally (in `shards` in-process stages).
 * Models are found by the registry (bundled default, `modelPaths`, `modelsDir/*.gguf`); tokenizer and
 * shards load lazily on first use and stay cached until `dispose()`. Each request gets its own sessions;
 * the engine batches the forwards of concurrent requests on a shard into one graph per step.
 */
export class LocalInferenceService implements InferenceService {
  readonly registry: ModelRegistry
  private readonly models = new Map<string, LoadedModel>()
  /** aborts every running generation on dispose() */
  private readonly shutdown = new AbortController()
  private readonly active = new Set<Promise<void>>()
  private disposed = false
  /** KV bytes the running requests hold */
  private activeKvBytes = 0
  private retainedIds = 0
  /** admission (issue 12 point 5): how many sequences run at once, how many wait */
  readonly admission: AdmissionGate

  constructor (private readonly options: LocalInferenceServiceOptions) {
    this.registry = new ModelRegistry(options)
    const threads = options.threads ?? 1
    if (!Number.isInteger(threads) || threads < 1) throw new InvalidGenerationRequestError(`threads must be an integer ≥ 1, got ${threads}`)
    const limit = (): number => options.maxSequences ?? this.derivedMaxSequences()
    this.admission = new AdmissionGate({ limit, maxQueue: () => options.maxQueue ?? limit(), capacityBytes: () => this.kvCapacityBytes() })
  }

  /** KV bytes the memory budget leaves beside the loaded weights (no bound without a budget). */
  private kvCapacityBytes (): number {
    const budget = this.options.memoryBudgetBytes
    if (budget === undefined) return Number.POSITIVE_INFINITY
    let weights = 0
    for (const m of this.models.values()) weights += m.metadata.fileBytes
    return Math.max(0, budget - weights)
  }

  /** Smallest sessions (256 cells) of the widest loaded model that fit the KV capacity. */
  private derivedMaxSequences (): number {
    if (this.options.memoryBudgetBytes === undefined || this.models.size === 0) return DEFAULT_SEQUENCES
    const perSequence = Math.max(...[...this.models.values()].map((m) => sessionKvBytes(m.metadata, 256)))
    return maxSequencesFor(this.kvCapacityBytes(), perSequence)
  }

  async * generate (req: InferenceRequest, { signal }: { signal: AbortSignal }): AsyncGenerator<GenerationEvent> {
    let finished!: () => void
    const running = new Promise<void>((resolve) => { finished = resolve })
    this.active.add(running)
    try {
      yield * this.generateInner(req, AbortSignal.any([signal, this.shutdown.signal]))
    } finally {
      finished()
      this.active.delete(running)
    }
  }

  private async * generateInner (req: InferenceRequest, signal: AbortSignal): AsyncGenerator<GenerationEvent> {
    if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) throw new InvalidGenerationRequestError(`maxTokens must be an integer ≥ 1, got ${req.maxTokens}`)
    const { model, entry } = await this.open(req.model, signal)
    const tokenizer = await model.tokenizer
    const rendered = tokenizer.renderPrompt(req.prompt)
    const contextSize = Math.min(this.options.contextSize ?? model.metadata.contextLength, model.metadata.contextLength)
    if (rendered.tokens.length >= contextSize) throw new ContextTooLongError(rendered.tokens.length, contextSize)
    const shards = await this.shardsOf(entry, model, signal)
    log.debug({ request: req.id, model: entry.id, promptTokens: rendered.tokens.length, shards: shards.length }, 'generating')
    const prefix = this.prefixOf(model)
    const kv = sessionKvBytes(model.metadata, Math.min(contextSize, rendered.tokens.length + req.maxTokens))
    const release = await this.admission.acquire(signal, kv)
    this.activeKvBytes += kv
    let grammar: Awaited<ReturnType<typeof createGrammarConstraint>> | undefined
    try {
      grammar = req.grammar !== undefined ? await createGrammarConstraint(entry.path, req.grammar, { signal }) : undefined
      // retained KV yields to the running requests
      prefix.trim()
      yield * generateLocal({
        shards,
        tokenizer,
        promptTokens: rendered.tokens,
        maxTokens: req.maxTokens,
        sampling: req.sampling,
        stop: [...req.stop, ...rendered.stop],
        contextSize,
        ...(this.options.prefillChunk !== undefined ? { prefillChunk: this.options.prefillChunk } : {}),
        ...(grammar !== undefined ? { grammar } : {}),
        ...(req.resumeTokens !== undefined ? { resume: req.resumeTokens } : {}),
        prefix: { cache: prefix, requestId: `${req.id}#${++this.retainedIds}` },
        signal
      })
    } finally {
      this.activeKvBytes -= kv
      release()
      grammar?.dispose()
    }
  }

  /** The retained KV of `model`'s shards: what the memory budget leaves after weights and running requests. */
  private prefixOf (model: LoadedModel): PrefixCache<readonly ShardSession[]> {
    if (model.prefix === undefined) {
      const { memoryBudgetBytes, prefixCacheBytes } = this.options
      const weights = (): number => {
        let n = 0
        for (const m of this.models.values()) n += m.metadata.fileBytes
        return n
      }
      model.prefix = sessionChainCache(() => prefixCacheBytes ??
        (memoryBudgetBytes !== undefined ? Math.max(0, memoryBudgetBytes - weights() - this.activeKvBytes) : DEFAULT_PREFIX_CACHE_BYTES))
    }
    return model.prefix
  }

  /** Retained-KV counters summed over the loaded models (for /metrics). */
  prefixStats (): PrefixTotals {
    return sumPrefixStats([...this.models.values()].map((m) => m.prefix))
  }

  async countTokens (req: Pick<InferenceRequest, 'model' | 'prompt'>, { signal }: { signal: AbortSignal }): Promise<number> {
    const { model } = await this.open(req.model, signal)
    return (await model.tokenizer).renderPrompt(req.prompt).tokens.length
  }

  async listModels ({ signal }: { signal: AbortSignal }): Promise<ModelInfo[]> {
    const out: ModelInfo[] = []
    for (const entry of await this.registry.list()) {
      throwIfAborted(signal)
      try {
        const model = this.modelOf(entry)
        const tokenizer = await model.tokenizer
        out.push({
          id: entry.id,
          sizeBytes: entry.sizeBytes,
          architecture: model.metadata.architecture,
          nLayers: model.metadata.nLayers,
          contextLength: model.metadata.contextLength,
          hasChatTemplate: tokenizer.hasChatTemplate,
          heldBy: [this.options.nodeName ?? hostname()]
        })
      } catch (err) {
        log.warn({ model: entry.id, path: entry.path, err }, 'skipping a model file that cannot be used')
      }
    }
    return out
  }

  /** Cancels running generations (they end with `cancelled`), waits for them, then frees shards and tokenizers. */
  async dispose (): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    this.shutdown.abort()
    // a consumer that holds a generation suspended (never iterates again) must not block shutdown forever
    const grace = new Promise<void>((resolve) => setTimeout(resolve, DISPOSE_GRACE_MS).unref())
    await Promise.race([Promise.allSettled([...this.active]), grace])
    if (this.active.size > 0) log.warn({ running: this.active.size }, 'disposing while generations are still suspended')
    const models = [...this.models.values()]
    for (const m of models) m.prefix?.clear()
    this.models.clear()
    await Promise.allSettled(models.flatMap((m) => [
      m.tokenizer.then(async (t) => { await t.dispose() }),
      ...(m.shards !== undefined ? [m.shards.then(async (s) => { await Promise.all(s.map(async (x) => { await x.dispose() })) })] : [])
    ]))
  }

  private async open (id: string, signal: AbortSignal): Promise<{ model: LoadedModel, entry: ModelEntry }> {
    throwIfAborted(signal)
    if (this.disposed) throw new InvalidGenerationRequestError('the local inference service was disposed')
    const entry = await this.registry.resolve(id)
    const model = this.modelOf(entry)
    await model.tokenizer
    return { model, entry }
  }

  /** Cached per file path; a failed load is forgotten so the next request retries. */
  private modelOf (entry: ModelEntry): LoadedModel {
    let m = this.models.get(entry.path)
    if (m === undefined) {
      const metadata = this.options.engine.readMetadata(entry.path)
      const tokenizer = Tokenizer.load(entry.path)
      tokenizer.catch(() => { this.models.delete(entry.path) })
      m = { metadata, tokenizer }
      this.models.set(entry.path, m)
    }
    return m
  }

  private async shardsOf (entry: ModelEntry, model: LoadedModel, signal: AbortSignal): Promise<LoadedShard[]> {
    if (model.shards === undefined) {
      const ranges = splitLayersEvenly(model.metadata.nLayers, this.options.shards ?? 1)
      const threads = this.options.threads ?? 1
      const flashAttention = this.options.flashAttention ?? true
      const gpu = this.options.gpu
      const gpuLayers = nodeGpuLayers(gpu, model.metadata, ranges, Math.min(this.options.contextSize ?? model.metadata.contextLength, model.metadata.contextLength), flashAttention)
      const load = async (): Promise<LoadedShard[]> => {
        const loaded: LoadedShard[] = []
        try {
          for (const range of ranges) {
            loaded.push(await this.options.engine.loadShard({ modelPath: entry.path, range, threads, flashAttention, ...shardGpuOptions(gpu, range, ranges, gpuLayers) }, {}))
          }
        } catch (err) {
          await Promise.allSettled(loaded.map(async (s) => { await s.dispose() }))
          throw err
        }
        log.info({ model: entry.id, ranges, threads, ...(gpu !== undefined ? { gpuLayers } : {}) }, 'model loaded')
        return loaded
      }
      model.shards = load()
      model.shards.catch(() => { model.shards = undefined })
    }
    throwIfAborted(signal)
    return await model.shards
  }
}
