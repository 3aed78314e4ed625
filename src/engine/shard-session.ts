import { DisposedError, throwIfAborted } from '../shared/errors/exo-error.js'
import { ContextOverflowError, InvalidEngineOptionError, InvalidForwardInputError, SlidingWindowHistoryError } from '../shared/errors/engine-errors.js'
import { UBATCH } from './batch-step.js'
import { SeqPages } from './kv-pages.js'
import { KV_PAD, SwaCells, swaCacheCells, swaWindowOf } from './swa-cells.js'
import type { BatchScheduler } from './batch-scheduler.js'
import type { ShardRuntime } from './shard-runtime.js'
import type { GraphAllocator } from './graph-allocator.js'
import type { ForwardInput, ForwardOptions, ForwardOutput, SessionOptions, ShardSession } from './types.js'

export { UBATCH }
const MAX_CONTEXT = 1 << 20
/** cap on the f32 values one forward may return (1 GiB) */
const MAX_OUTPUT_VALUES = 1 << 28

/**
 * One sequence of a shard: its own cells (pages) in the shard's shared KV store, its position, and — when the
 * shard owns sliding-window layers — its own ring of sliding-window cells. Forwards go to the shard's batch
 * scheduler, which evaluates the pending forwards of all sequences in one graph per step.
 */
export class ShardSessionImpl implements ShardSession {
  readonly contextSize: number
  /** contextSize padded to 256 cells (llama.cpp's n_ctx_seq) */
  readonly paddedContext: number
  /** tokens in the cache */
  pos = 0
  /** position after every forward already submitted */
  queuedEnd = 0
  disposed = false
  /** base-cache pages (local cell = position) */
  readonly pages = new SeqPages()
  /** sliding-window ring (undefined when this shard owns no sliding-window layer) and its pages */
  readonly swa: SwaCells | undefined
  readonly swaPages: SeqPages | undefined
  /** the pipelineDepth of its latest forward */
  pipelineDepth = 1

  constructor (private readonly shard: ShardRuntime, private readonly scheduler: BatchScheduler, options: SessionOptions, private readonly onDispose: () => void) {
    const cs = options.contextSize
    if (!Number.isInteger(cs) || cs < 1 || cs > MAX_CONTEXT) throw new InvalidEngineOptionError(`contextSize must be an integer in [1, ${MAX_CONTEXT}], got ${cs}`)
    this.contextSize = cs
    this.paddedContext = Math.ceil(cs / KV_PAD) * KV_PAD
    const hp = shard.description.hparams
    const nSwa = swaWindowOf(hp, shard.range.start, shard.range.end)
    // llama.cpp's iSWA cache (swa_full = false): a ring bounded by the window, sized as for a cache of its own
    this.swa = nSwa === undefined ? undefined : new SwaCells(swaCacheCells(this.paddedContext, cs, nSwa, UBATCH), nSwa, hp.swaType ?? 'standard')
    this.swaPages = nSwa === undefined ? undefined : new SeqPages()
  }

  get position (): number { return this.pos }
  /** the compute buffers of the shard's graphs (tests measure them) */
  get allocator (): GraphAllocator { return this.scheduler.allocator }

  private validate (input: ForwardInput): number {
    const { shard } = this
    const hp = shard.description.hparams
    if (shard.isFirst) {
      if (input.kind !== 'tokens') throw new InvalidForwardInputError(`the first shard takes token ids, got '${input.kind}'`)
      if (!(input.tokens instanceof Int32Array)) throw new InvalidForwardInputError('tokens must be an Int32Array')
      for (let i = 0; i < input.tokens.length; i++) {
        const t = input.tokens[i]!
        if (t < 0 || t >= hp.nVocab) throw new InvalidForwardInputError(`token id ${t} at index ${i} is outside the vocabulary [0, ${hp.nVocab})`)
      }
      return input.tokens.length
    }
    if (input.kind !== 'hidden') throw new InvalidForwardInputError(`a shard starting at layer ${shard.range.start} takes a hidden state, got '${input.kind}'`)
    if (!(input.hidden instanceof Float32Array)) throw new InvalidForwardInputError('hidden must be a Float32Array')
    if (!Number.isInteger(input.nTokens) || input.nTokens < 0) throw new InvalidForwardInputError(`nTokens ${input.nTokens} is not a non-negative integer`)
    if (input.hidden.length !== input.nTokens * hp.nEmbd) {
      throw new InvalidForwardInputError(`hidden has ${input.hidden.length} values, expected nTokens ${input.nTokens} × nEmbd ${hp.nEmbd} = ${input.nTokens * hp.nEmbd}`)
    }
    return input.nTokens
  }

  async forward (input: ForwardInput, options: ForwardOptions = {}): Promise<ForwardOutput> {
    if (this.disposed) throw new DisposedError('ShardSession')
    throwIfAborted(options.signal)
    const n = this.validate(input)
    if (n < 1) throw new InvalidForwardInputError('a forward pass needs at least one token')
    const mode = options.logits ?? 'last'
    if (mode !== 'last' && mode !== 'all') throw new InvalidForwardInputError(`logits must be 'last' or 'all', got '${String(mode)}'`)
    const depth = options.pipelineDepth ?? 1
    if (!Number.isInteger(depth) || depth < 1 || depth > 64) throw new InvalidForwardInputError(`pipelineDepth must be an integer in [1, 64], got ${depth}`)
    if (this.queuedEnd + n > this.contextSize) throw new ContextOverflowError(this.queuedEnd, n, this.contextSize)
    const hp = this.shard.description.hparams
    if (this.shard.isLast && mode === 'all' && n * hp.nVocab > MAX_OUTPUT_VALUES) {
      throw new InvalidForwardInputError(`logits 'all' for ${n} tokens × ${hp.nVocab} would exceed ${MAX_OUTPUT_VALUES} values; evaluate fewer tokens per call`)
    }
    this.pipelineDepth = depth
    // the scheduler advances `pos` as the tokens are evaluated and undoes `queuedEnd` when the forward fails
    this.queuedEnd += n
    return await this.scheduler.submit(this, input, n, mode, options.signal, options.borrowOutput === true)
  }

  truncate (position: number): void {
    if (this.disposed) throw new DisposedError('ShardSession')
    if (!Number.isInteger(position) || position < 0 || position > this.pos) {
      throw new InvalidForwardInputError(`truncate position ${position} is not an integer in [0, ${this.pos}]`)
    }
    const swa = this.swa
    if (swa !== undefined) {
      // the next token at `position` attends to the window before it: those cells must not have been reused
      const need = Math.max(0, position - swa.nSwa + 1)
      const min = swa.posMin()
      if (position > 0 && (min < 0 || min > need)) throw new SlidingWindowHistoryError(position, min)
      swa.seqRm(position, Number.MAX_SAFE_INTEGER)
    }
    // cells at positions >= position become invisible (the mask hides them); pages past them go back to the store
    this.pos = position
    this.queuedEnd = position
    this.scheduler.shrink(this)
  }

  dispose (): void {
    if (this.disposed) return
    this.disposed = true
    this.onDispose()
    this.scheduler.release(this)
  }
}
