import { setTimeout as sleep } from 'node:timers/promises'

/** Weight bytes per second a node moves (serves or fetches) while it has activation traffic. */
export const BUSY_WEIGHTS_BYTES_PER_SEC = 8_000_000

/**
 * Yield to activations (protocols/weights.md "Priority of activations"): while `busy()` (this node runs
 * requests through its stages), each piece of weights waits so weight traffic stays at `busyBytesPerSec`;
 * otherwise it passes at once. Shared by the holder's handler and the fetcher, so both ends of a link
 * give its bandwidth and their CPU to the decode stream first.
 */
export function busyPacer (busy: () => boolean, busyBytesPerSec = BUSY_WEIGHTS_BYTES_PER_SEC): (bytes: number, signal: AbortSignal) => Promise<void> {
  let due = 0
  return async (bytes, signal) => {
    if (!busy()) { due = 0; return }
    const now = performance.now()
    due = Math.max(due, now) + (bytes / busyBytesPerSec) * 1000
    const wait = due - now - (bytes / busyBytesPerSec) * 1000
    if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => {})
  }
}
