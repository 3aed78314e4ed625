import type { ForwardInput } from './types.js'

/** One forward's part of a step: its input and the `m` tokens of it the step evaluates, from token `from` on. */
export interface StepPart { input: ForwardInput, from: number, m: number }

/**
 * The graph input of one step: the parts' tokens (a first shard: token ids, (Σm) i32) or hidden states (any other:
 * (Σm, nEmbd) f32), part after part, in the order of the step's segments.
 */
export function stepInput (parts: readonly StepPart[], isFirst: boolean, nEmbd: number): { kind: 'tokens', tokens: Int32Array } | { kind: 'hidden', hidden: Float32Array } {
  const rows = parts.reduce((a, p) => a + p.m, 0)
  if (isFirst) {
    const t = new Int32Array(rows)
    let o = 0
    for (const { input, from, m } of parts) { if (input.kind === 'tokens') t.set(input.tokens.subarray(from, from + m), o); o += m }
    return { kind: 'tokens', tokens: t }
  }
  const h = new Float32Array(rows * nEmbd)
  let o = 0
  for (const { input, from, m } of parts) { if (input.kind === 'hidden') h.set(input.hidden.subarray(from * nEmbd, (from + m) * nEmbd), o); o += m * nEmbd }
  return { kind: 'hidden', hidden: h }
}
