/**
 * The RoPE arguments llama.cpp derives from a file's rope.scaling.* keys for a generic (non-deepseek) model:
 * llama_model::load_hparams (scaling type defaults to linear; freq_scale = 1 / factor) and llama_context's
 * constructor (YaRN: ext_factor 1 and the attention factor from get_mscale, × rope.scaling.attn_factor) — in f32
 * arithmetic as llama.cpp computes them.
 */
import { UnsupportedModelError } from '../../shared/errors/engine-errors.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'

export interface RopeScaling {
  type: 'none' | 'linear' | 'yarn' | 'longrope'
  freqScale: number
  extFactor: number
  attnFactor: number
  betaFast: number
  betaSlow: number
}

const f = Math.fround
const logf = (x: number): number => f(Math.log(x))
/** llama_context: get_mscale(scale, mscale) */
const getMscale = (scale: number, mscale: number): number => scale <= 1 ? 1 : f(f(f(f(0.1) * mscale) * logf(scale)) + 1)

export function readRopeScaling (m: MetadataReader, allowed: ReadonlyArray<RopeScaling['type']>): RopeScaling {
  const type = (m.str('rope.scaling.type') ?? 'linear') as RopeScaling['type']
  if (!allowed.includes(type)) throw new UnsupportedModelError(`${m.gguf.path}: rope scaling '${type}' is not supported for ${m.arch}`)
  const factor = m.has('rope.scaling.factor') ? f(m.float('rope.scaling.factor')) : f(m.float('rope.scale_linear', 0))
  const freqScale = type === 'none' || factor === 0 ? 1 : f(1 / factor)
  const extFactor = type === 'yarn' ? 1 : 0
  let attnFactor = 1
  if (extFactor !== 0) {
    const fac = f(1 / freqScale)
    const logMul = f(m.float('rope.scaling.yarn_log_multiplier', 0))
    attnFactor = logMul !== 0 ? f(getMscale(fac, 1) / getMscale(fac, logMul)) : getMscale(fac, 1)
    // ggml's rope multiplies by its own YaRN mscale: llama.cpp cancels it
    attnFactor = f(attnFactor * f(1 / f(1 + f(f(0.1) * logf(fac)))))
  }
  attnFactor = f(attnFactor * f(m.float('rope.scaling.attn_factor', 1)))
  return {
    type, freqScale, extFactor, attnFactor,
    betaFast: f(m.float('rope.scaling.yarn_beta_fast', 32)),
    betaSlow: f(m.float('rope.scaling.yarn_beta_slow', 1))
  }
}
