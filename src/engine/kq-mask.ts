/**
 * The KQ mask of one graph (llama.cpp set_input_kq_mask, one sequence, causal): row i (token at position pos0 + i)
 * keeps cell j (0, else -inf) when the cell holds a position p0 <= pos0 + i — and, for a sliding-window cache,
 * one inside the window. Pure. The engine builds its masks in batch-inputs.ts (several sequences in one shared
 * store); this single-sequence form is what a sequence alone must get (tests compare the two).
 */
import { isMaskedSwa } from './swa-cells.js'
import type { SwaType } from './hparams.js'

const F16_ZERO = 0x0000
const F16_NEG_INF = 0xfc00

export interface MaskSpec {
  nKv: number
  nTokens: number
  pos0: number
  /** f16 (flash attention) or f32 */
  f16: boolean
  /** position held by each cell (-1 = empty); undefined = cell j holds position j (the base cache) */
  cellPos?: Int32Array
  swa?: { nSwa: number, type: SwaType }
}

/** (nKv, nTokens) mask values, row-major by token. */
export function buildKqMask (s: MaskSpec): Float32Array | Uint16Array {
  const { nKv, nTokens: n, pos0 } = s
  if (s.cellPos === undefined) {
    if (s.f16) {
      const m = new Uint16Array(nKv * n)
      for (let i = 0; i < n; i++) { const p = pos0 + i; m.fill(F16_ZERO, i * nKv, i * nKv + p + 1); m.fill(F16_NEG_INF, i * nKv + p + 1, (i + 1) * nKv) }
      return m
    }
    const m = new Float32Array(nKv * n)
    for (let i = 0; i < n; i++) { const p = pos0 + i; m.fill(-Infinity, i * nKv + p + 1, (i + 1) * nKv) }
    return m
  }
  const cells = s.cellPos
  const m = s.f16 ? new Uint16Array(nKv * n) : new Float32Array(nKv * n)
  const drop = s.f16 ? F16_NEG_INF : -Infinity
  const keep = s.f16 ? F16_ZERO : 0
  for (let i = 0; i < n; i++) {
    const p1 = pos0 + i
    for (let j = 0; j < nKv; j++) {
      const p0 = j < cells.length ? cells[j]! : -1
      const visible = p0 >= 0 && p0 <= p1 && (s.swa === undefined || !isMaskedSwa(s.swa.nSwa, s.swa.type, p0, p1))
      m[i * nKv + j] = visible ? keep : drop
    }
  }
  return m
}
