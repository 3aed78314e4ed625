/** Quantisation of measurements for the canonical view (protocols/membership.md "Canonical view"). Pure. */

/** Classes of the 1-2-5 series used for RTTs (ms). */
export const RTT_CLASSES_MS: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]

/** Smallest 1-2-5 value c (from 0.001 up) with v ≤ 1.5·c; 0 for v ≤ 0. */
export function quantise125 (v: number): number {
  if (!(v > 0)) return 0
  for (let exp = -3; exp <= 9; exp++) {
    for (const m of [1, 2, 5]) {
      const c = Number((m * 10 ** exp).toPrecision(1))
      if (v <= c * 1.5) return c
    }
  }
  return 5e9
}

/** RTT class: the smallest class c of RTT_CLASSES_MS with rttMs ≤ 1.5·c (the last class caps). */
export function rttClassMs (rttMs: number): number {
  for (const c of RTT_CLASSES_MS) if (rttMs <= c * 1.5) return c
  return RTT_CLASSES_MS[RTT_CLASSES_MS.length - 1] ?? 10000
}

/**
 * Publisher-side hysteresis: keep the previous class while the smoothed RTT stays within
 * [0.8 × its lower edge, 1.25 × its upper edge]; otherwise move to the class of the new value.
 */
export function nextRttClassMs (previous: number | undefined, rttMs: number): number {
  const fresh = rttClassMs(rttMs)
  if (previous === undefined) return fresh
  const i = RTT_CLASSES_MS.indexOf(previous)
  if (i < 0) return fresh
  const upper = previous * 1.5 * 1.25
  const below = RTT_CLASSES_MS[i - 1]
  const lower = below === undefined ? 0 : below * 1.5 * 0.8
  return rttMs >= lower && rttMs <= upper ? previous : fresh
}

export const MIB = 1024 * 1024

/** Memory budget in MiB, rounded down to a multiple of 64 MiB. */
export function memoryBudgetMiB (bytes: number): number {
  return Math.floor(bytes / MIB / 64) * 64
}
