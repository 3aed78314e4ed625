// Shared by the property tests: an input either decodes or fails with the project's typed error — never a
// TypeError, RangeError or anything else (a crash of the node, or a 500 of its API).
import assert from 'node:assert/strict'
import { ExoError } from '../../../src/shared/errors/exo-error.js'

/** Seeded so CI is repeatable; FUZZ_SEED=<n> explores another part of the space (fast-check prints the seed of a failure). */
export const FUZZ = { seed: Number(process.env.FUZZ_SEED ?? 20261201), numRuns: Number(process.env.FUZZ_RUNS ?? 300) }

/** Calls fn; returns its result, or undefined when it threw an error of one of `types` (ExoError by default). */
export function typedOrValid<T> (fn: () => T, types: Array<abstract new (...a: never[]) => Error> = [ExoError]): T | undefined {
  try {
    return fn()
  } catch (err) {
    assert.ok(types.some((t) => err instanceof t), `untyped failure: ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}\n${(err as Error)?.stack ?? ''}`)
    return undefined
  }
}

/** Mutations of a valid encoding: truncate, extend, flip bytes, overwrite a u32 with an extreme value. */
export type Mutation = { kind: 'truncate', at: number } | { kind: 'extend', bytes: Uint8Array } | { kind: 'flip', at: number[], xor: number } | { kind: 'u32', at: number, value: number }

export function mutate (bytes: Uint8Array, m: Mutation): Uint8Array {
  if (bytes.byteLength === 0) return bytes
  const out = new Uint8Array(bytes)
  switch (m.kind) {
    case 'truncate': return out.subarray(0, m.at % (bytes.byteLength + 1))
    case 'extend': { const e = new Uint8Array(bytes.byteLength + m.bytes.byteLength); e.set(bytes); e.set(m.bytes, bytes.byteLength); return e }
    case 'flip': for (const i of m.at) out[i % out.byteLength]! ^= (m.xor | 1); return out
    case 'u32': {
      if (out.byteLength < 4) return out
      new DataView(out.buffer).setUint32(m.at % (out.byteLength - 3), m.value >>> 0, true)
      return out
    }
  }
}
