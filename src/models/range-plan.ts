/**
 * Byte-range bookkeeping of a resumable download. PURE. Ranges are half-open `[start, end)` integers,
 * kept sorted, disjoint and merged (adjacent ranges joined).
 */
export type ByteRange = readonly [start: number, end: number]

/** `done` plus `r`, merged. */
export function addRange (done: readonly ByteRange[], r: ByteRange): ByteRange[] {
  if (r[1] <= r[0]) return [...done]
  const out: ByteRange[] = []
  let [s, e] = r
  let placed = false
  for (const d of done) {
    if (d[1] < s) { out.push(d); continue }
    if (d[0] > e) {
      if (!placed) { out.push([s, e]); placed = true }
      out.push(d)
      continue
    }
    s = Math.min(s, d[0])
    e = Math.max(e, d[1])
  }
  if (!placed) out.push([s, e])
  return out
}

/** Sorted, merged and clipped to `[0, size)`: what a state file may be trusted to say. */
export function normalizeRanges (ranges: readonly ByteRange[], size: number): ByteRange[] {
  let out: ByteRange[] = []
  for (const [a, b] of ranges) {
    const s = Math.max(0, Math.min(size, Math.floor(a)))
    const e = Math.max(0, Math.min(size, Math.floor(b)))
    if (Number.isFinite(s) && Number.isFinite(e) && e > s) out = addRange(out, [s, e])
  }
  return out
}

export function rangeBytes (ranges: readonly ByteRange[]): number {
  let n = 0
  for (const [a, b] of ranges) n += b - a
  return n
}

/** The gaps of `done` in `[0, size)`. */
export function missingRanges (size: number, done: readonly ByteRange[]): ByteRange[] {
  const out: ByteRange[] = []
  let at = 0
  for (const [a, b] of normalizeRanges(done, size)) {
    if (a > at) out.push([at, a])
    at = Math.max(at, b)
  }
  if (at < size) out.push([at, size])
  return out
}

/**
 * Size of one request: the file cut into about 4 pieces per parallel connection so fast connections take over
 * the tail, never below `minPartBytes` (a small file is one request).
 */
export function pieceBytes (size: number, parallel: number, minPartBytes: number): number {
  const p = Math.max(1, Math.floor(parallel))
  return Math.max(minPartBytes, Math.ceil(size / (p * 4)), 1)
}

/** The gaps cut into pieces of at most `piece` bytes, in file order. */
export function planPieces (gaps: readonly ByteRange[], piece: number): ByteRange[] {
  const out: ByteRange[] = []
  for (const [a, b] of gaps) {
    for (let s = a; s < b; s += piece) out.push([s, Math.min(b, s + piece)])
  }
  return out
}

/** `Range` header value of a piece (inclusive end, as HTTP counts). */
export function rangeHeader ([a, b]: ByteRange): string {
  return `bytes=${a}-${b - 1}`
}

/** Start and total of a `Content-Range: bytes a-b/total` header; undefined when absent or malformed. */
export function parseContentRange (value: string | null): { start: number, end: number, total: number | undefined } | undefined {
  const m = value === null ? null : /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value.trim())
  if (m === null) return undefined
  return { start: Number(m[1]), end: Number(m[2]) + 1, total: m[3] === '*' ? undefined : Number(m[3]) }
}
