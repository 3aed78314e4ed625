/** llama.cpp's load_swa_pattern / set_swa_pattern: which layers use the sliding window. */
import { InvalidGgufError } from '../../shared/errors/engine-errors.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'

/**
 * Per layer: the window for sliding-window layers, 0 for full-attention ones. `attention.sliding_window_pattern`
 * is either one flag per layer or a period n (layer il slides iff il % n < n - 1; dense_first: iff il % n != 0;
 * n = 0: every layer), `defaultPeriod` when absent.
 */
export function swaWindows (m: MetadataReader, nLayers: number, nSwa: number, defaultPeriod: number, denseFirst = false): number[] {
  const key = m.key('attention.sliding_window_pattern')
  const v = m.raw(key)
  if (typeof v === 'object' && v !== null && typeof v !== 'bigint' && 'values' in v && v.values !== undefined) {
    if (v.values.length !== nLayers) throw new InvalidGgufError(`${m.gguf.path}: ${key} has ${v.values.length} values, expected ${nLayers}`)
    return v.values.map((x) => (x === true || x === 1 || x === 1n) ? nSwa : 0)
  }
  const n = v === undefined ? defaultPeriod : m.nonNegInt('attention.sliding_window_pattern')
  return Array.from({ length: nLayers }, (_, il) => {
    const slides = n === 0 || (denseFirst ? il % n !== 0 : il % n < n - 1)
    return slides ? nSwa : 0
  })
}
