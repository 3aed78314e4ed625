import { GenerationPipelineError } from '../shared/errors/generation-errors.js'
import { decodeTensor, encodeTensor } from '../shared/tensor-codec.js'
import { DType } from '../shared/tensor.js'
import type { ForwardInput, ShardSession } from '../engine/types.js'

/**
 * One request's sessions on a chain of shards in this process, first to last. Each hidden state crosses
 * the stage boundary through the wire codec (encodeTensor → decodeTensor, f32), exactly as it would
 * between machines, so the split path is exercised end to end.
 */
export class ShardChain {
  constructor (
    private readonly sessions: readonly ShardSession[],
    private readonly nEmbd: number,
    private readonly nVocab: number
  ) {
    if (sessions.length === 0) throw new GenerationPipelineError('a shard chain needs at least one session')
  }

  /** Tokens in the cache of the first shard. */
  get position (): number { return this.sessions[0]!.position }

  /**
   * Feeds tokens through every shard.
   * @param tokens (t) token ids
   * @returns (nVocab) f32 logits of the last token: a view of a buffer the last shard reuses at a later step (read
   *   or copy it before awaiting anything else; ForwardOptions.borrowOutput)
   */
  async forward (tokens: Int32Array, signal: AbortSignal): Promise<Float32Array> {
    let input: ForwardInput = { kind: 'tokens', tokens }
    for (const [i, session] of this.sessions.entries()) {
      // a hidden state is copied into the wire encoding at once, logits are sampled by the caller at once
      const output = await session.forward(input, { signal, logits: 'last', borrowOutput: true })
      const isLast = i === this.sessions.length - 1
      if (!isLast) {
        if (output.kind !== 'hidden') throw new GenerationPipelineError(`shard ${i} of ${this.sessions.length} returned ${output.kind}, expected a hidden state`)
        if (output.nTokens !== tokens.length || output.hidden.length !== output.nTokens * this.nEmbd) {
          throw new GenerationPipelineError(`shard ${i} returned ${output.hidden.length} floats for ${output.nTokens} tokens, expected (${tokens.length}, ${this.nEmbd})`)
        }
        // (t, nEmbd) f32 → wire bytes → (t, nEmbd) f32
        const decoded = decodeTensor(encodeTensor([output.nTokens, this.nEmbd], output.hidden, DType.F32))
        input = { kind: 'hidden', hidden: decoded.data, nTokens: decoded.shape[0]! }
      } else {
        if (output.kind !== 'logits') throw new GenerationPipelineError(`last shard returned ${output.kind}, expected logits`)
        if (output.nRows < 1 || output.logits.length !== output.nRows * this.nVocab) {
          throw new GenerationPipelineError(`last shard returned ${output.logits.length} logits in ${output.nRows} rows, expected rows of ${this.nVocab}`)
        }
        // (nVocab) f32: the last row
        return output.logits.subarray((output.nRows - 1) * this.nVocab)
      }
    }
    throw new GenerationPipelineError('unreachable: chain ended without logits')
  }

  dispose (): void {
    for (const s of this.sessions) s.dispose()
  }
}
