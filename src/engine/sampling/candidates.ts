/**
 * The filter steps of the sampler, as pure functions over candidate token ids (llama.cpp's
 * `llama_sampler_*_apply` semantics, min_keep = 1). `logits` is (nVocab) f32 and never modified here.
 * A candidate list is sorted (descending logit, lower id first on ties) when `sorted` is true.
 */
export interface Candidates {
  ids: Int32Array
  sorted: boolean
}

/** Index of the largest logit; the lowest index wins ties. NaN never wins. */
export function argmax (logits: Float32Array): number {
  let best = 0
  let bestValue = -Infinity
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!
    if (v > bestValue) { bestValue = v; best = i }
  }
  return best
}

/** Descending by logit, then ascending id. */
function better (logits: Float32Array, a: number, b: number): boolean {
  const la = logits[a]!
  const lb = logits[b]!
  return la > lb || (la === lb && a < b)
}

/** The k best token ids of `from` (all tokens when undefined), sorted. O(n log k) with a binary heap. */
export function topIds (logits: Float32Array, k: number, from?: Int32Array): Int32Array {
  const n = from?.length ?? logits.length
  k = Math.min(k, n)
  if (k <= 0) return new Int32Array(0)
  // min-heap by "better": heap[0] is the worst of the kept ones
  const heap = new Int32Array(k)
  let size = 0
  const worse = (a: number, b: number): boolean => better(logits, b, a)
  const siftUp = (i: number): void => {
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!worse(heap[i]!, heap[p]!)) break
      const t = heap[i]!; heap[i] = heap[p]!; heap[p] = t; i = p
    }
  }
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < size && worse(heap[l]!, heap[m]!)) m = l
      if (r < size && worse(heap[r]!, heap[m]!)) m = r
      if (m === i) break
      const t = heap[i]!; heap[i] = heap[m]!; heap[m] = t; i = m
    }
  }
  // the logit of the worst kept id: most tokens lose to it on one comparison (ties go through `better`)
  let floor = -Infinity
  for (let j = 0; j < n; j++) {
    const id = from === undefined ? j : from[j]!
    const v = logits[id]!
    if (size === k && v < floor) continue
    if (Number.isNaN(v)) continue
    if (size < k) {
      heap[size++] = id
      siftUp(size - 1)
      if (size === k) floor = logits[heap[0]!]!
    } else if (better(logits, id, heap[0]!)) {
      heap[0] = id
      siftDown(0)
      floor = logits[heap[0]!]!
    }
  }
  const out = Array.from(heap.subarray(0, size))
  out.sort((a, b) => (better(logits, a, b) ? -1 : better(logits, b, a) ? 1 : 0))
  return Int32Array.from(out)
}

/** Every token id, unsorted. */
export function allCandidates (nVocab: number): Candidates {
  const ids = new Int32Array(nVocab)
  for (let i = 0; i < nVocab; i++) ids[i] = i
  return { ids, sorted: false }
}

/** top-k: keep the k best (k ≤ 0: no-op). */
export function applyTopK (logits: Float32Array, c: Candidates, k: number): Candidates {
  if (k <= 0) return c
  return { ids: topIds(logits, k, c.ids), sorted: true }
}

/**
 * top-p (nucleus): keep the smallest best-first prefix whose softmax mass reaches p (p ≥ 1: no-op).
 * Sorting only as far as needed: the k best are taken for growing k until their mass reaches p, which
 * keeps exactly the prefix a full sort would keep.
 */
export function applyTopP (logits: Float32Array, c: Candidates, p: number): Candidates {
  if (p >= 1 || c.ids.length === 0) return c
  let max = -Infinity
  for (const id of c.ids) if (logits[id]! > max) max = logits[id]!
  let total = 0
  for (const id of c.ids) total += Math.exp(logits[id]! - max)
  let k = Math.min(c.ids.length, 256)
  for (;;) {
    const sorted = c.sorted ? c.ids.subarray(0, k) : topIds(logits, k, c.ids)
    let cum = 0
    for (let i = 0; i < sorted.length; i++) {
      cum += Math.exp(logits[sorted[i]!]! - max) / total
      if (cum >= p) return { ids: sorted.slice(0, i + 1), sorted: true }
    }
    if (k >= c.ids.length) return { ids: sorted.slice(), sorted: true }
    k = Math.min(c.ids.length, k * 4)
  }
}

/** min-p: keep tokens whose probability is ≥ p × the best one's, i.e. logit ≥ max + ln p (p ≤ 0: no-op). */
export function applyMinP (logits: Float32Array, c: Candidates, p: number): Candidates {
  if (p <= 0 || c.ids.length === 0) return c
  let max = -Infinity
  for (const id of c.ids) if (logits[id]! > max) max = logits[id]!
  const threshold = max + Math.log(p)
  const kept = c.ids.filter((id) => logits[id]! >= threshold)
  return { ids: kept.length > 0 ? kept : c.ids.slice(0, 1), sorted: c.sorted }
}

/**
 * Draws one candidate from softmax(logit / temperature) using u ∈ [0, 1).
 * temperature > 0 here; greedy is handled by the caller.
 */
export function drawFromCandidates (logits: Float32Array, c: Candidates, temperature: number, u: number): number {
  const ids = c.ids
  if (ids.length === 0) throw new RangeError('no candidates left to sample from')
  let max = -Infinity
  for (const id of ids) if (logits[id]! > max) max = logits[id]!
  const weights = new Float64Array(ids.length)
  let total = 0
  for (let i = 0; i < ids.length; i++) {
    const w = Math.exp((logits[ids[i]!]! - max) / temperature)
    weights[i] = w
    total += w
  }
  const target = u * total
  let cum = 0
  for (let i = 0; i < ids.length; i++) {
    cum += weights[i]!
    if (target < cum) return ids[i]!
  }
  // rounding: fall back to the last candidate with non-zero weight
  for (let i = ids.length - 1; i >= 0; i--) if (weights[i]! > 0) return ids[i]!
  return ids[0]!
}
