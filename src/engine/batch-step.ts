/**
 * Which pending forwards go into the next graph, and how many tokens each (pure). One graph per step for all
 * sequences of a shard: the next token of every decoding sequence plus a chunk of pending prefills, so running
 * streams keep emitting while a long prompt is prefilled.
 */

/** Tokens per graph (llama.cpp's default n_ubatch; node-llama-cpp evaluates prompts in batches of this size). */
export const UBATCH = 512
/** Prompt tokens one sequence adds to a graph it shares with other sequences. */
export const PREFILL_CHUNK = 256
/** A forward of at most this many tokens counts as decoding (it is never split). */
export const DECODE_MAX = 4

export interface StepCandidate {
  /** tokens this forward still has to evaluate */
  remaining: number
  /** stages the sequence's steps travel through (1 = none); decoding sequences of a pipeline run in that many groups */
  pipelineDepth: number
}

/**
 * Tokens each candidate (one per sequence, oldest first) evaluates in the next step (0 = waits).
 * Alone: up to UBATCH tokens, as a solo run. Together: decoders first, at most ⌈liveGrouped / depth⌉ of those
 * in a pipeline (so the stages work on different groups at once), then prefills in chunks of PREFILL_CHUNK,
 * UBATCH tokens in all.
 * @param liveGrouped live sequences of this shard that run in a pipeline (pipelineDepth > 1)
 * @param maxRows tokens the graph may hold (fewer than UBATCH when the store is so large that UBATCH rows over all
 *   its cells would outgrow the compute buffer budgeted for one sequence's context)
 */
export function planStep (candidates: readonly StepCandidate[], liveGrouped: number, maxRows = UBATCH): number[] {
  const take: number[] = candidates.map(() => 0)
  if (candidates.length === 0) return take
  const rows = Math.max(1, Math.min(UBATCH, maxRows))
  if (candidates.length === 1) { take[0] = Math.min(candidates[0]!.remaining, rows); return take }
  let budget = rows
  const depth = Math.max(1, ...candidates.map((c) => c.pipelineDepth))
  const groupCap = depth > 1 ? Math.max(1, Math.ceil(liveGrouped / depth)) : Number.POSITIVE_INFINITY
  let grouped = 0
  candidates.forEach((c, i) => {
    if (c.remaining > DECODE_MAX || budget < c.remaining) return
    if (c.pipelineDepth > 1) { if (grouped >= groupCap) return; grouped++ }
    take[i] = c.remaining
    budget -= c.remaining
  })
  candidates.forEach((c, i) => {
    if (c.remaining <= DECODE_MAX || budget <= 0) return
    take[i] = Math.min(c.remaining, PREFILL_CHUNK, budget)
    budget -= take[i]!
  })
  if (!take.some((t) => t > 0)) take[0] = Math.min(candidates[0]!.remaining, rows)
  return take
}
