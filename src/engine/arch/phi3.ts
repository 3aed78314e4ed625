/**
 * phi3: port of llama.cpp src/models/phi3.cpp (Phi-3, Phi-3.5, Phi-4 / Phi-4-mini dense). RMS norm → fused QKV
 * (or separate Q/K/V) → NEOX RoPE over rope.dimension_count dims (partial rotary when < head size) with LongRoPE
 * factors (rope_factors_long when the context exceeds rope.scaling.original_context_length, else
 * rope_factors_short) and rope.scaling.attn_factor → Q / sqrt(head size) → attention → residual → RMS norm →
 * fused gate|up (ffn_up is [n_embd, 2·n_ff], ggml_swiglu) → down → residual. llama.cpp disables Phi's sliding
 * window (phi3.cpp: "Phi SWA is currently disabled"), and so does this port: every layer attends globally.
 */
import { InvalidGgufError, UnsupportedModelError } from '../../shared/errors/engine-errors.js'
import { ROPE_MODE_NEOX } from '../native/ggml.js'
import { buildAttention, buildDecoderOutput, rmsNorm } from './attention.js'
import { buildQkv, hasFusedQkv, qkvTensors } from './qkv.js'
import type { Tensor } from '../native/ggml.js'
import type { HParams } from '../hparams.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'
import type { ArchSpec, LayerContext, TensorSpec } from './arch-spec.js'

export interface Phi3HParams extends HParams {
  fusedQkv: boolean
  /** rope.scaling.attn_factor (llama.cpp's rope_attn_factor, default 1) */
  ropeAttnFactor: number
}

function phi3HParams (m: MetadataReader, hp: HParams): Phi3HParams {
  const path = m.gguf.path
  if (!(hp.rmsEps > 0)) throw new InvalidGgufError(`${path}: missing metadata key ${m.key('attention.layer_norm_rms_epsilon')}`)
  if (hp.nExpert > 0) throw new UnsupportedModelError(`${path}: phi3 with ${hp.nExpert} experts is not supported`)
  if (hp.nFf < 1) throw new UnsupportedModelError(`${path}: ${m.key('feed_forward_length')} is missing or 0`)
  if (hp.valueDim !== hp.headDim) throw new UnsupportedModelError(`${path}: ${m.key('attention.value_length')} != key_length (${hp.headDim})`)
  if (hp.headDim * hp.nHead !== hp.nEmbd) throw new InvalidGgufError(`${path}: phi3 needs head size × heads (${hp.headDim} × ${hp.nHead}) = n_embd ${hp.nEmbd}`)
  if (hp.nRot > hp.headDim || hp.nRot % 2 !== 0) throw new InvalidGgufError(`${path}: rope.dimension_count ${hp.nRot} must be even and <= head size ${hp.headDim}`)
  if (hp.ropeScalingType !== 'none' && hp.ropeScalingType !== 'linear') throw new UnsupportedModelError(`${path}: rope scaling '${hp.ropeScalingType}' is not supported for phi3`)
  return { ...hp, fusedQkv: hasFusedQkv(m.gguf), ropeAttnFactor: m.float('rope.scaling.attn_factor', 1) }
}

function phi3Tensors (hp: Phi3HParams): TensorSpec[] {
  const { nEmbd, nVocab, nFf } = hp
  const out: TensorSpec[] = [
    { name: 'token_embd.weight', ne: [nEmbd, nVocab], role: 'embedding', op: 'get_rows' },
    { name: 'output_norm.weight', ne: [nEmbd], role: 'output', op: 'mul' },
    { name: 'output.weight', ne: [nEmbd, nVocab], role: 'output', op: 'mul_mat', optional: true },
    // LongRoPE factors: one pair for the whole model (llama.cpp duplicates them into every layer)
    { name: 'rope_factors_long.weight', ne: [hp.nRot / 2], role: 'layer', op: 'mul', optional: true },
    { name: 'rope_factors_short.weight', ne: [hp.nRot / 2], role: 'layer', op: 'mul', optional: true }
  ]
  for (let i = 0; i < hp.nLayers; i++) {
    const L = (name: string, ne: number[], op: TensorSpec['op']): TensorSpec => ({ name: `blk.${i}.${name}`, ne, layer: i, role: 'layer', op })
    out.push(
      L('attn_norm.weight', [nEmbd], 'mul'),
      ...qkvTensors(hp, i, hp.fusedQkv),
      L('attn_output.weight', [nEmbd, nEmbd], 'mul_mat'),
      L('ffn_norm.weight', [nEmbd], 'mul'),
      L('ffn_down.weight', [nFf, nEmbd], 'mul_mat'),
      L('ffn_up.weight', [nEmbd, 2 * nFf], 'mul_mat')
    )
  }
  return out
}

function buildPhi3Layer (c: LayerContext, il: number, inpL: Tensor): Tensor {
  const { g } = c
  const hp = c.hp as Phi3HParams
  const w = (s: string): Tensor => c.w(`blk.${il}.${s}`)!
  let residual = inpL
  // get_rope_factors: n_ctx_seq (the session's padded context, one sequence) > n_ctx_orig_yarn → long factors
  const factors = (c.nCtxSeq > hp.nCtxOrig ? c.w('rope_factors_long.weight') : c.w('rope_factors_short.weight')) ?? null
  const cur0 = rmsNorm(c, inpL, w('attn_norm.weight'))
  let { q, k, v } = buildQkv(c, il, cur0)
  const rope = {
    nDims: hp.nRot, mode: ROPE_MODE_NEOX, nCtxOrig: hp.nCtxOrig, freqBase: hp.ropeFreqBase, freqScale: hp.ropeFreqScale,
    extFactor: 0, attnFactor: hp.ropeAttnFactor, betaFast: 32, betaSlow: 1
  }
  q = g.ropeExt(q, c.pos, factors, rope)
  k = g.ropeExt(k, c.pos, factors, rope)
  q = g.scale(q, Math.fround(1 / Math.fround(Math.sqrt(hp.headDim))))
  let cur = buildAttention(c, il, q, k, v, w('attn_output.weight'), undefined, 1)
  if (il === hp.nLayers - 1 && c.outIds !== undefined) {
    cur = g.getRows(cur, c.outIds)
    residual = g.getRows(residual, c.outIds)
  }
  cur = g.add(cur, residual)
  residual = cur
  cur = rmsNorm(c, cur, w('ffn_norm.weight'))
  // build_ffn(up, no gate, down, LLM_FFN_SWIGLU, LLM_FFN_SEQ): down(swiglu(up(x)))
  cur = g.mulMat(w('ffn_down.weight'), g.swiglu(g.mulMat(w('ffn_up.weight'), cur)))
  return g.add(residual, cur)
}

export const phi3: ArchSpec = {
  name: 'phi3',
  // the RoPE factors depend on each sequence's context: only sequences on the same side of n_ctx_orig share a graph
  contextClass: (hp, nCtxSeq) => nCtxSeq > (hp as Phi3HParams).nCtxOrig ? 1 : 0,
  hparams: phi3HParams,
  tensors: (hp) => phi3Tensors(hp as Phi3HParams),
  buildLayer: buildPhi3Layer,
  buildOutput: buildDecoderOutput
}
