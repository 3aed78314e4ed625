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
/**
 * A group of pipelined sequences comes back to a stage within about this many ms (the stage after it sends their
 * frames back to back); a step waits at most this long for the rest of a group before it runs without them.
 */
export const GROUP_WAIT_MS = 4
/** A pipelined sequence that has not stepped for this long is idle (retained KV, a finished request): it counts in no group. */
export const IDLE_MS = 1000

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
 * @param liveGrouped active sequences of this shard that run in a pipeline (pipelineDepth > 1; pending, or stepped
 *   within IDLE_MS: the ring's occupancy, not the retained ones)
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
  const groupCap = depth > 1 ? groupSize(liveGrouped, depth) : Number.POSITIVE_INFINITY
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

/**
 * Decoders of a pipeline of `depth` stages that one step takes: the ring's `active` sequences in `depth` groups, so
 * that while one group is in this stage the others are in the other stages.
 */
export function groupSize (active: number, depth: number): number {
  return Math.max(1, Math.ceil(active / Math.max(1, depth)))
}

/** What a stage knows of its pipelined decoders when it could start a step. */
export interface GroupWait {
  /** pipelined decoders pending now (one per sequence) */
  pending: number
  /** sequences that stepped with the pending ones last time (their group) and are not pending yet: still in the ring */
  inFlight: number
  /** decoders one step takes (groupSize) */
  cap: number
  /** ms since the oldest pending forward was submitted */
  waitedMs: number
  /** ms of this shard's last step: waiting longer than a step costs more than the part-filled step it avoids */
  stepMs: number
}

/**
 * Ms the next step waits for the rest of a group (0 = run now). A group's sequences leave a stage in one step and
 * come back together; starting with the first of them would run it alone and the rest in the step after — two
 * part-filled steps where one would do, and the groups would fragment further every round. So a step waits while
 * members of its group are still on their way, unless it is full already, at most GROUP_WAIT_MS and at most as long
 * as a step takes (a member that does not come back in time — its request ended — drops out of the group: it steps
 * with whoever is pending then).
 */
export function groupWaitMs (w: GroupWait): number {
  if (w.inFlight <= 0 || w.pending <= 0 || w.pending >= w.cap) return 0
  return Math.max(0, Math.min(GROUP_WAIT_MS, w.stepMs) - w.waitedMs)
}
