import { InvalidGenerationRequestError } from '../shared/errors/generation-errors.js'
import type { LayerRange } from '../engine/types.js'

/**
 * Splits `nLayers` into `k` contiguous half-open ranges as evenly as possible; the first
 * `nLayers % k` ranges get one layer more. Throws when k is not in [1, nLayers].
 */
export function splitLayersEvenly (nLayers: number, k: number): LayerRange[] {
  if (!Number.isInteger(k) || k < 1 || k > nLayers) {
    throw new InvalidGenerationRequestError(`cannot split ${nLayers} layers into ${k} shards (need 1 ≤ shards ≤ ${nLayers})`)
  }
  const base = Math.floor(nLayers / k)
  const extra = nLayers % k
  const ranges: LayerRange[] = []
  let start = 0
  for (let i = 0; i < k; i++) {
    const end = start + base + (i < extra ? 1 : 0)
    ranges.push({ start, end })
    start = end
  }
  return ranges
}
