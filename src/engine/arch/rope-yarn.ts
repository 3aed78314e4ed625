/**
 * The RoPE parameters llama_context derives from the file (llama-context.cpp's cparams: rope_freq_scale,
 * yarn_ext_factor, yarn_attn_factor, yarn_beta_fast / slow, n_ctx_orig_yarn), in f32 arithmetic as the C++ does.
 * For architectures whose load_arch_hparams reads no YaRN keys of its own (deepseek2's log multiplier is its own).
 */
import { UnsupportedModelError } from '../../shared/errors/engine-errors.js'
import type { HParams } from '../hparams.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'

export interface RopeParams {
  scalingType: 'none' | 'linear' | 'yarn'
  /** cparams.rope_freq_scale (1 when the scaling type is none) */
  freqScale: number
  /** hparams.rope_freq_scale_train (1 / factor whatever the type): what sliding-window layers use */
  trainFreqScale: number
  extFactor: number
  attnFactor: number
  betaFast: number
  betaSlow: number
  nCtxOrig: number
}

const f = Math.fround
const logf = (x: number): number => f(Math.log(x))
/** llama_context's get_mscale */
const getMscale = (scale: number, mscale: number): number => scale <= 1 ? 1 : f(f(f(f(0.1) * mscale) * logf(scale)) + 1)

export function llamaContextRope (m: MetadataReader, hp: HParams): RopeParams {
  // llama_model::load_hparams: scaling type defaults to linear; factor from rope.scaling.factor, else rope.scale_linear
  const type = m.str('rope.scaling.type') ?? 'linear'
  if (type !== 'none' && type !== 'linear' && type !== 'yarn') throw new UnsupportedModelError(`${m.gguf.path}: rope scaling '${type}' is not supported`)
  const ropescale = m.has('rope.scaling.factor') ? f(m.float('rope.scaling.factor')) : f(m.float('rope.scale_linear', 0))
  const trainFreqScale = ropescale === 0 ? 1 : f(1 / ropescale)
  const freqScale = type === 'none' ? 1 : trainFreqScale
  const extFactor = type === 'yarn' ? 1 : 0
  let attnFactor = 1
  if (extFactor !== 0) {
    const factor = f(1 / freqScale)
    attnFactor = getMscale(factor, 1)
    // ggml's rope applies its own YaRN magnitude factor: cancel it (llama.cpp PR 17945)
    attnFactor = f(attnFactor * f(1 / f(1 + f(f(0.1) * logf(factor)))))
  }
  attnFactor = f(attnFactor * f(m.float('rope.scaling.attn_factor', 1)))
  return { scalingType: type, freqScale, trainFreqScale, extFactor, attnFactor, betaFast: 32, betaSlow: 1, nCtxOrig: hp.nCtxOrig }
}
