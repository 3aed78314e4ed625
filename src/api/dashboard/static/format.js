// Formatting of sizes, durations and ids for display. Pure.

/** @param {number | undefined} n bytes */
export function formatBytes (n) {
  if (n === undefined || !Number.isFinite(n)) return '?'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let v = n
  let i = 0
  while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++ }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`
}

/** @param {number | undefined} ms */
export function formatMs (ms) {
  if (ms === undefined || !Number.isFinite(ms)) return '?'
  if (ms < 1) return `${ms.toFixed(2)} ms`
  if (ms < 10) return `${ms.toFixed(1)} ms`
  if (ms < 10_000) return `${Math.round(ms)} ms`
  return `${(ms / 1000).toFixed(1)} s`
}

/** Half-open layer range. @param {number} start @param {number} end */
export function formatRange (start, end) {
  return `[${start}, ${end})`
}

/** @param {string} id */
export function shortId (id) {
  return id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id
}

/** @param {number} ms */
export function formatAgo (ms) {
  if (ms < 1500) return 'just now'
  const s = Math.round(ms / 1000)
  return s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`
}

/**
 * One GPU of a node (GET /cluster/state `members[].devices[]`): "cuda NVIDIA H200 · 108 GB free of 150 GB".
 * @param {{ backend: string, name: string, totalBytes: number, freeBytes: number }} d
 */
export function deviceText (d) {
  return `${d.backend} ${d.name} · ${formatBytes(d.freeBytes)} free of ${formatBytes(d.totalBytes)}`
}

/**
 * Short form for the topology box: "GPU: NVIDIA H200 150 GB" (and "+N" more devices).
 * @param {Array<{ name: string, totalBytes: number }> | undefined} devices
 * @returns {string | undefined} undefined without devices
 */
export function devicesShort (devices) {
  if (devices === undefined || devices.length === 0) return undefined
  const d = devices[0]
  const name = d.name.length > 12 ? `${d.name.slice(0, 11)}…` : d.name
  return `GPU: ${name} ${formatBytes(d.totalBytes)}${devices.length > 1 ? ` +${devices.length - 1}` : ''}`
}

/**
 * One line per model pull of this node (GET /cluster/state `downloads`).
 * @param {{ ref: string, id?: string, file?: string, completed: number, total: number, state: string, error?: string }} d
 */
export function downloadText (d) {
  const pct = d.total > 0 ? Math.floor((d.completed / d.total) * 100) : 0
  const what = d.file !== undefined ? `${d.ref}: ${d.file}` : d.ref
  if (d.state === 'failed') return `pull ${d.ref} failed: ${d.error ?? 'unknown error'}`
  if (d.state === 'done') return `pulled ${d.ref}${d.id !== undefined ? ` (${d.id})` : ''}`
  if (d.state === 'resolving') return `pulling ${d.ref}: resolving…`
  if (d.state === 'verifying') return `pulling ${what}: verifying sha256`
  return `pulling ${what}: ${pct}% ${formatBytes(d.completed)} / ${formatBytes(d.total)}`
}
