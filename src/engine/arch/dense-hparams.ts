import { InvalidGgufError, UnsupportedModelError } from '../../shared/errors/engine-errors.js'
import type { HParams } from '../hparams.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'

/** The checks of a llama-family dense decoder (llama, qwen2, qwen3): what their graph builders assume. */
export function denseDecoderHParams (m: MetadataReader, hp: HParams): HParams {
  const path = m.gguf.path
  if (!(hp.rmsEps > 0)) throw new InvalidGgufError(`${path}: missing metadata key ${m.key('attention.layer_norm_rms_epsilon')}`)
  if (hp.nExpert > 0) throw new UnsupportedModelError(`${path}: ${m.arch} with ${hp.nExpert} experts (mixture of experts) is not supported for this architecture`)
  if (hp.nFf < 1) throw new UnsupportedModelError(`${path}: ${m.key('feed_forward_length')} is missing or 0`)
  if (hp.valueDim !== hp.headDim) throw new UnsupportedModelError(`${path}: ${m.key('attention.value_length')} != key_length (${hp.headDim})`)
  if (hp.nRot !== hp.headDim) throw new UnsupportedModelError(`${path}: partial rotary embeddings (rope.dimension_count ${hp.nRot} != ${hp.headDim})`)
  if (hp.ropeScalingType !== 'none' && hp.ropeScalingType !== 'linear') throw new UnsupportedModelError(`${path}: rope scaling '${hp.ropeScalingType}' is not supported`)
  return hp
}
