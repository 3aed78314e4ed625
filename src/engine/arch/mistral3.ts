/**
 * mistral3: port of llama.cpp src/models/mistral3.cpp (Ministral 3, Mistral Small 3.x files converted as
 * mistral3). The llama block (NORM RoPE, SwiGLU) with YaRN or LongRoPE rope scaling, optional llama-4 style
 * attention temperature tuning (attention.temperature_scale: Q × (log(floor(pos / n_ctx_orig) + 1) · scale + 1)),
 * optional attn_output / FFN biases and rope_freqs. The MoE branch is not supported (typed error).
 */
import { InvalidGgufError, UnsupportedModelError } from '../../shared/errors/engine-errors.js'
import { ROPE_MODE_NORMAL } from '../native/ggml.js'
import { buildAttention, buildDecoderOutput, rmsNorm } from './attention.js'
import { buildQkv, hasFusedQkv, qkvTensors } from './qkv.js'
import { readRopeScaling } from './rope-scaling.js'
import type { Tensor } from '../native/ggml.js'
import type { HParams } from '../hparams.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'
import type { ArchSpec, LayerContext, TensorSpec } from './arch-spec.js'
import type { RopeScaling } from './rope-scaling.js'

export interface Mistral3HParams extends HParams {
  fusedQkv: boolean
  rope: RopeScaling
  kqScale: number
}

function mistral3HParams (m: MetadataReader, hp: HParams): Mistral3HParams {
  const path = m.gguf.path
  if (!(hp.rmsEps > 0)) throw new InvalidGgufError(`${path}: missing metadata key ${m.key('attention.layer_norm_rms_epsilon')}`)
  if (hp.nExpert > 0) throw new UnsupportedModelError(`${path}: mistral3 with ${hp.nExpert} experts is not supported`)
  if (hp.nFf < 1) throw new UnsupportedModelError(`${path}: ${m.key('feed_forward_length')} is missing or 0`)
  if (hp.valueDim !== hp.headDim || hp.nRot !== hp.headDim) throw new UnsupportedModelError(`${path}: mistral3 needs value_length = key_length = rope.dimension_count`)
  const rope = readRopeScaling(m, ['none', 'linear', 'yarn', 'longrope'])
  const tempScale = m.float('attention.temperature_scale', 0)
  if (tempScale !== 0 && !(hp.nCtxOrig > 0)) throw new InvalidGgufError(`${path}: attention temperature scaling needs rope.scaling.original_context_length`)
  const f = Math.fround
  return {
    ...hp,
    ropeFreqScale: rope.freqScale,
    ropeScalingType: rope.type,
    fusedQkv: hasFusedQkv(m.gguf),
    rope,
    kqScale: hp.attentionScale === 0 ? f(1 / f(Math.sqrt(hp.headDim))) : hp.attentionScale,
    attnTemperature: tempScale === 0 ? undefined : { scale: f(tempScale), floorScale: hp.nCtxOrig, offset: 0 }
  }
}

function mistral3Tensors (hp: Mistral3HParams): TensorSpec[] {
  const { nEmbd, nVocab, nFf } = hp
  const longrope = hp.rope.type === 'longrope'
  const out: TensorSpec[] = [
    { name: 'token_embd.weight', ne: [nEmbd, nVocab], role: 'embedding', op: 'get_rows' },
    { name: 'output_norm.weight', ne: [nEmbd], role: 'output', op: 'mul' },
    { name: 'output.weight', ne: [nEmbd, nVocab], role: 'output', op: 'mul_mat', optional: true },
    ...(longrope
      ? [{ name: 'rope_factors_long.weight', ne: [hp.nRot / 2], role: 'layer' as const, op: 'mul' as const, optional: true },
          { name: 'rope_factors_short.weight', ne: [hp.nRot / 2], role: 'layer' as const, op: 'mul' as const, optional: true }]
      : [{ name: 'rope_freqs.weight', ne: [hp.nRot / 2], role: 'layer' as const, op: 'mul' as const, optional: true }])
  ]
  for (let i = 0; i < hp.nLayers; i++) {
    const L = (name: string, ne: number[], op: TensorSpec['op'], optional = false): TensorSpec => ({ name: `blk.${i}.${name}`, ne, layer: i, role: 'layer', op, optional })
    out.push(
      L('attn_norm.weight', [nEmbd], 'mul'),
      ...qkvTensors(hp, i, hp.fusedQkv),
      L('attn_output.weight', [hp.headDim * hp.nHead, nEmbd], 'mul_mat'),
      L('attn_output.bias', [nEmbd], 'add', true),
      L('ffn_norm.weight', [nEmbd], 'mul'),
      L('ffn_gate.weight', [nEmbd, nFf], 'mul_mat'),
      L('ffn_down.weight', [nFf, nEmbd], 'mul_mat'),
      L('ffn_up.weight', [nEmbd, nFf], 'mul_mat'),
      L('ffn_gate.bias', [nFf], 'add', true),
      L('ffn_down.bias', [nEmbd], 'add', true),
      L('ffn_up.bias', [nFf], 'add', true)
    )
  }
  return out
}

function buildMistral3Layer (c: LayerContext, il: number, inpL: Tensor): Tensor {
  const { g } = c
  const hp = c.hp as Mistral3HParams
  const w = (s: string): Tensor => c.w(`blk.${il}.${s}`)!
  const opt = (s: string): Tensor | undefined => c.w(`blk.${il}.${s}`)
  const addOpt = (x: Tensor, b: Tensor | undefined): Tensor => b === undefined ? x : g.add(x, b)
  let inpSA = inpL
  let cur = rmsNorm(c, inpL, w('attn_norm.weight'))
  // get_rope_factors: rope_freqs, else LongRoPE long / short by the sequence's padded context (n_ctx_seq)
  const factors = (c.w('rope_freqs.weight') ??
    (c.nCtxSeq > hp.nCtxOrig ? c.w('rope_factors_long.weight') : c.w('rope_factors_short.weight'))) ?? null
  let { q, k, v } = buildQkv(c, il, cur)
  const rope = {
    nDims: hp.nRot, mode: ROPE_MODE_NORMAL, nCtxOrig: hp.nCtxOrig, freqBase: hp.ropeFreqBase, freqScale: hp.rope.freqScale,
    extFactor: hp.rope.extFactor, attnFactor: hp.rope.attnFactor, betaFast: hp.rope.betaFast, betaSlow: hp.rope.betaSlow
  }
  q = g.ropeExt(q, c.pos, factors, rope)
  k = g.ropeExt(k, c.pos, factors, rope)
  if (c.attnScale !== undefined) q = g.mul(q, c.attnScale)
  cur = buildAttention(c, il, q, k, v, w('attn_output.weight'), opt('attn_output.bias'), hp.kqScale)
  if (il === hp.nLayers - 1 && c.outIds !== undefined) {
    cur = g.getRows(cur, c.outIds)
    inpSA = g.getRows(inpSA, c.outIds)
  }
  const ffnInp = g.add(cur, inpSA)
  cur = rmsNorm(c, ffnInp, w('ffn_norm.weight'))
  // build_ffn(LLM_FFN_SILU, LLM_FFN_PAR) with optional biases
  const tmp = addOpt(g.mulMat(w('ffn_up.weight'), cur), opt('ffn_up.bias'))
  const gt = addOpt(g.mulMat(w('ffn_gate.weight'), cur), opt('ffn_gate.bias'))
  cur = addOpt(g.mulMat(w('ffn_down.weight'), g.swigluSplit(gt, tmp)), opt('ffn_down.bias'))
  return g.add(cur, ffnInp)
}

export const mistral3: ArchSpec = {
  name: 'mistral3',
  hparams: mistral3HParams,
  // with LongRoPE factors the graph depends on each sequence's context (see ArchSpec.contextClass)
  contextClass: (hp, nCtxSeq) => nCtxSeq > (hp as Mistral3HParams).nCtxOrig ? 1 : 0,
  tensors: (hp) => mistral3Tensors(hp as Mistral3HParams),
  buildLayer: buildMistral3Layer,
  buildOutput: buildDecoderOutput
}
