/**
 * Seeded pseudo-random numbers for sampling: xoshiro128** seeded through splitmix32, so the same seed gives
 * the same stream on every platform. Not cryptographic.
 */
export class Prng {
  private s0: number
  private s1: number
  private s2: number
  private s3: number

  /** @param seed any integer (taken modulo 2^32) */
  constructor (seed: number) {
    let x = (Math.trunc(seed) >>> 0)
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0
      let z = x
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.s0 = next()
    this.s1 = next()
    this.s2 = next()
    this.s3 = next()
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1
  }

  /** Next unsigned 32-bit integer. */
  nextUint32 (): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0
    const t = (this.s1 << 9) >>> 0
    this.s2 ^= this.s0
    this.s3 ^= this.s1
    this.s1 ^= this.s2
    this.s0 ^= this.s3
    this.s2 ^= t
    this.s3 = rotl(this.s3, 11)
    this.s0 >>>= 0; this.s1 >>>= 0; this.s2 >>>= 0; this.s3 >>>= 0
    return result
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  nextFloat (): number {
    return this.nextUint32() / 4294967296
  }
}

function rotl (x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}

/** A seed for requests that give none (llama.cpp: LLAMA_DEFAULT_SEED = random). */
export function randomSeed (): number {
  return Math.floor(Math.random() * 4294967296)
}
