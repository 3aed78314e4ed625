import { InvalidSamplingParamsError } from '../../shared/errors/generation-errors.js'
import { allCandidates, applyMinP, applyTopP, argmax, drawFromCandidates, topIds } from './candidates.js'
import { Prng, randomSeed } from './prng.js'
import type { SamplingParams } from '../../shared/inference.js'
import type { Candidates } from './candidates.js'

/** Every sampling setting, resolved. Defaults are llama.cpp's (`common_params_sampling`). */
export interface ResolvedSampling {
  temperature: number
  topK: number
  topP: number
  minP: number
  repeatPenalty: number
  penaltyLastN: number
  presencePenalty: number
  frequencyPenalty: number
  seed: number
}

export const SAMPLING_DEFAULTS: Readonly<Omit<ResolvedSampling, 'seed'>> = Object.freeze({
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  penaltyLastN: 64,
  presencePenalty: 0,
  frequencyPenalty: 0
})

/** Applies defaults and checks ranges. Throws `InvalidSamplingParamsError`. A missing seed is drawn at random. */
export function resolveSampling (params: SamplingParams): ResolvedSampling {
  const r: ResolvedSampling = { ...SAMPLING_DEFAULTS, seed: randomSeed() }
  for (const [key, value] of Object.entries(params) as Array<[keyof SamplingParams, unknown]>) {
    if (value === undefined) continue
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidSamplingParamsError(`${key} must be a finite number, got ${String(value)}`)
    r[key] = value
  }
  const check = (ok: boolean, what: string): void => { if (!ok) throw new InvalidSamplingParamsError(what) }
  check(r.temperature >= 0, `temperature must be ≥ 0, got ${r.temperature}`)
  check(Number.isInteger(r.topK) && r.topK >= 0, `topK must be an integer ≥ 0, got ${r.topK}`)
  check(r.topP >= 0 && r.topP <= 1, `topP must be in [0, 1], got ${r.topP}`)
  check(r.minP >= 0 && r.minP <= 1, `minP must be in [0, 1], got ${r.minP}`)
  check(r.repeatPenalty > 0, `repeatPenalty must be > 0, got ${r.repeatPenalty}`)
  check(Number.isInteger(r.penaltyLastN) && r.penaltyLastN >= 0, `penaltyLastN must be an integer ≥ 0, got ${r.penaltyLastN}`)
  check(Number.isInteger(r.seed), `seed must be an integer, got ${r.seed}`)
  return r
}

/**
 * Applies repeat / frequency / presence penalties in place to the logits of tokens seen in `recent`
 * (llama.cpp `llama_sampler_penalties`: repeat divides positive logits and multiplies negative ones).
 */
export function applyPenalties (logits: Float32Array, recent: ArrayLike<number>, s: Pick<ResolvedSampling, 'repeatPenalty' | 'presencePenalty' | 'frequencyPenalty'>): void {
  const counts = new Map<number, number>()
  for (let i = 0; i < recent.length; i++) {
    const t = recent[i]!
    if (t >= 0 && t < logits.length) counts.set(t, (counts.get(t) ?? 0) + 1)
  }
  for (const [t, count] of counts) {
    let l = logits[t]!
    l = l <= 0 ? l * s.repeatPenalty : l / s.repeatPenalty
    logits[t] = l - count * s.frequencyPenalty - s.presencePenalty
  }
}

/**
 * A sampler for one generation: penalties → top-k → top-p → min-p → temperature → draw (llama.cpp's
 * default order). temperature 0 = greedy (argmax after penalties; lowest id on ties).
 * Feed it every token of the context with `accept` (prompt and generated) so penalties see them.
 */
export class Sampler {
  readonly settings: ResolvedSampling
  private readonly rng: Prng
  private readonly recent: number[] = []

  constructor (params: SamplingParams) {
    this.settings = resolveSampling(params)
    this.rng = new Prng(this.settings.seed)
  }

  private get penaltiesActive (): boolean {
    const s = this.settings
    return s.penaltyLastN > 0 && (s.repeatPenalty !== 1 || s.presencePenalty !== 0 || s.frequencyPenalty !== 0)
  }

  /** Records a token of the context (keeps the last `penaltyLastN`). */
  accept (token: number): void {
    if (this.settings.penaltyLastN === 0) return
    this.recent.push(token)
    if (this.recent.length > this.settings.penaltyLastN) this.recent.shift()
  }

  /**
   * Failover: advances the random stream past `n` earlier tokens (one draw per token sampled with
   * temperature > 0), so a resumed seeded generation draws what an unbroken one would have.
   */
  skipDraws (n: number): void {
    for (let i = 0; i < n; i++) this.rng.nextFloat()
  }

  /**
   * Picks the next token.
   * @param logits (nVocab) f32 of the last position; not modified
   */
  sample (logits: Float32Array): number {
    const s = this.settings
    let work = logits
    if (this.penaltiesActive && this.recent.length > 0) {
      work = Float32Array.from(logits)
      applyPenalties(work, this.recent, s)
    }
    if (s.temperature <= 0) return argmax(work)
    let c: Candidates = s.topK > 0 ? { ids: topIds(work, s.topK), sorted: true } : allCandidates(work.length)
    c = applyTopP(work, c, s.topP)
    c = applyMinP(work, c, s.minP)
    return drawFromCandidates(work, c, s.temperature, this.rng.nextFloat())
  }
}
