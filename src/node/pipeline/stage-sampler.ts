import { Sampler } from '../../engine/sampling/sampler.js'
import { createGrammarConstraint } from '../../engine/grammar/grammar-constraint.js'
import type { OpenFrame } from '../../protocols/activations/index.js'
import { sampleConstrained } from '../generation-loop.js'
import type { TokenSampler } from './stage-runner.js'

/**
 * The last stage's sampler for one request, from its OPEN: the request's sampling settings (seed
 * resolved by stage 0), the prompt's recent tokens for the penalties, and its grammar, compiled for
 * the vocabulary of `modelPath`. Every sampled token is accepted into the penalties and the grammar;
 * after a failover the tokens generated before it (`resumedTokens`) are replayed into both.
 */
export async function createStageSampler (open: OpenFrame, modelPath: string, signal: AbortSignal): Promise<TokenSampler> {
  const sampler = new Sampler(open.sampling ?? {})
  for (const t of open.recentTokens ?? []) sampler.accept(t)
  const grammar = open.grammar !== undefined ? await createGrammarConstraint(modelPath, open.grammar, { signal }) : undefined
  // failover: pick up where the lost ring's sampler was (grammar state, random stream)
  const resumed = open.resumedTokens ?? []
  try {
    for (const t of resumed) grammar?.accept(t)
  } catch (err) {
    grammar?.dispose()
    throw err
  }
  sampler.skipDraws(resumed.length)
  return {
    // (nVocab) f32 logits of the last position
    sample: (logits) => sampleConstrained(sampler, logits, grammar),
    dispose: () => { grammar?.dispose() }
  }
}
