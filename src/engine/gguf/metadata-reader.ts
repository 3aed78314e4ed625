import { InvalidGgufError } from '../../shared/errors/engine-errors.js'
import type { GgufFile, GgufValue } from './gguf-reader.js'

/**
 * Typed, validated access to one architecture's GGUF metadata (`<arch>.<key>`). Every failure is an
 * InvalidGgufError naming the file and the key. Pure: reads the parsed header only.
 */
export class MetadataReader {
  constructor (readonly gguf: GgufFile, readonly arch: string) {}

  /** `<arch>.<key>` */
  key (k: string): string { return `${this.arch}.${k}` }
  has (k: string): boolean { return this.gguf.metadata.has(this.key(k)) }
  raw (fullKey: string): GgufValue | undefined { return this.gguf.metadata.get(fullKey) }

  private fail (k: string, why: string): never { throw new InvalidGgufError(`${this.gguf.path}: metadata key ${k} ${why}`) }

  /** A number under `<arch>.<k>`, or a per-layer array whose values are all equal; `fallback` when absent. */
  num (k: string, fallback?: number): number {
    const full = this.key(k)
    const v = this.gguf.metadata.get(full)
    if (v === undefined) {
      if (fallback !== undefined) return fallback
      return this.fail(full, 'is missing')
    }
    if (typeof v === 'number') return v
    if (typeof v === 'bigint') return Number(v)
    if (typeof v === 'boolean') return v ? 1 : 0
    if (typeof v === 'object' && v.values !== undefined && v.values.length > 0 && v.values.every((x) => x === v.values![0])) {
      const x = v.values[0]
      if (typeof x === 'number' || typeof x === 'bigint') return Number(x)
    }
    return this.fail(full, 'is not a number (or a constant per-layer array)')
  }

  /** A positive integer under `<arch>.<k>`. */
  posInt (k: string, fallback?: number): number {
    const v = this.num(k, fallback)
    if (!Number.isInteger(v) || v < 1) this.fail(this.key(k), `= ${v} is not a positive integer`)
    return v
  }

  /** A non-negative integer under `<arch>.<k>`. */
  nonNegInt (k: string, fallback?: number): number {
    const v = this.num(k, fallback)
    if (!Number.isInteger(v) || v < 0) this.fail(this.key(k), `= ${v} is not a non-negative integer`)
    return v
  }

  /** A finite float under `<arch>.<k>`. */
  float (k: string, fallback?: number): number {
    const v = this.num(k, fallback)
    if (!Number.isFinite(v)) this.fail(this.key(k), `= ${v} is not finite`)
    return v
  }

  bool (k: string, fallback: boolean): boolean {
    const v = this.gguf.metadata.get(this.key(k))
    if (v === undefined) return fallback
    if (typeof v === 'boolean') return v
    return this.fail(this.key(k), 'is not a boolean')
  }

  str (k: string): string | undefined {
    const v = this.gguf.metadata.get(this.key(k))
    if (v === undefined) return undefined
    if (typeof v === 'string') return v
    return this.fail(this.key(k), 'is not a string')
  }

  /** A per-layer numeric array of length n (a scalar is broadcast); `fallback` when absent. */
  perLayer (k: string, n: number, fallback?: number): number[] {
    const full = this.key(k)
    const v = this.gguf.metadata.get(full)
    if (v === undefined) {
      if (fallback !== undefined) return new Array<number>(n).fill(fallback)
      return this.fail(full, 'is missing')
    }
    if (typeof v === 'number' || typeof v === 'bigint') return new Array<number>(n).fill(Number(v))
    if (typeof v === 'object' && typeof v !== 'boolean' && v.values !== undefined) {
      if (v.values.length !== n) this.fail(full, `has ${v.values.length} values, expected ${n} (one per layer)`)
      return v.values.map((x) => {
        if (typeof x !== 'number' && typeof x !== 'bigint') this.fail(full, 'holds a non-number')
        return Number(x)
      })
    }
    return this.fail(full, 'is not a number or a per-layer array')
  }
}
