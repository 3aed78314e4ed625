/**
 * gemma3: port of llama.cpp src/models/gemma3.cpp (text decoder). Token embeddings × sqrt(n_embd); per layer
 * RMS norm → Q/K/V → per-head Q/K RMS norms → NEOX RoPE (sliding-window layers: rope.freq_base_swa, scale 1;
 * global layers: rope.freq_base with the file's linear scaling) → Q × f_attention_scale → attention (kq_scale 1)
 * → post-attention norm + residual → RMS norm → GELU-gated FFN → post-FFN norm + residual. Interleaved
 * sliding-window layers (attention.sliding_window, pattern default 5 local : 1 global); optional final logit softcap.
 */
import { ROPE_MODE_NEOX } from '../native/ggml.js'
import { buildAttention, rmsNorm } from './attention.js'
import { denseDecoderHParams } from './dense-hparams.js'
import { buildQkv, hasFusedQkv, qkvTensors } from './qkv.js'
import { layerWindow } from '../swa-cells.js'
import { swaWindows } from './swa-pattern.js'
import type { Tensor } from '../native/ggml.js'
import type { HParams } from '../hparams.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'
import type { ArchSpec, LayerContext, TensorSpec } from './arch-spec.js'

export interface GemmaHParams extends HParams {
  fusedQkv: boolean
  /** f_attention_scale (f32): Q is multiplied by it before attention */
  qScale: number
  ropeFreqBaseSwa: number
  ropeFreqScaleSwa: number
  /** attention logit softcap (gemma2), 0 = none */
  attnSoftcap: number
  /** final logit softcap, 0 = none */
  finalSoftcap: number
  /** gemma3: per-head Q/K RMS norms */
  qkNorm: boolean
}

const f32 = Math.fround

/** gemma_pytorch's query_pre_attn_scalar as llama.cpp picks it: 27B models scale by n_embd / n_head, others by head size. */
export function gemmaQScale (hp: HParams, is27b: boolean): number {
  return f32(1 / f32(Math.sqrt(is27b ? Math.floor(hp.nEmbd / hp.nHead) : hp.headDim)))
}

export function gemma3HParams (m: MetadataReader, base: HParams): GemmaHParams {
  const hp = denseDecoderHParams(m, base)
  const nSwa = m.nonNegInt('attention.sliding_window', 0)
  const swaWindow = nSwa > 0 ? swaWindows(m, hp.nLayers, nSwa, 6) : new Array<number>(hp.nLayers).fill(0)
  return {
    ...hp,
    swaWindow,
    swaType: 'standard',
    fusedQkv: hasFusedQkv(m.gguf),
    qScale: gemmaQScale(hp, hp.nLayers === 62),
    ropeFreqBaseSwa: nSwa > 0 ? m.float('rope.freq_base_swa', 10000) : hp.ropeFreqBase,
    ropeFreqScaleSwa: 1,
    attnSoftcap: 0,
    finalSoftcap: m.float('final_logit_softcapping', 0),
    qkNorm: true
  }
}

/** The tensors of a gemma2/gemma3 decoder (load_arch_tensors); `tiedAlways`: gemma2 always reuses token_embd as output. */
export function gemmaTensors (hp: GemmaHParams, tiedAlways: boolean): TensorSpec[] {
  const { nEmbd, nVocab, nFf } = hp
  const out: TensorSpec[] = [
    { name: 'token_embd.weight', ne: [nEmbd, nVocab], role: 'embedding', op: 'get_rows' },
    { name: 'output_norm.weight', ne: [nEmbd], role: 'output', op: 'mul' }
  ]
  if (!tiedAlways) out.push({ name: 'output.weight', ne: [nEmbd, nVocab], role: 'output', op: 'mul_mat', optional: true })
  for (let i = 0; i < hp.nLayers; i++) {
    const L = (name: string, ne: number[], op: TensorSpec['op']): TensorSpec => ({ name: `blk.${i}.${name}`, ne, layer: i, role: 'layer', op })
    out.push(
      L('attn_norm.weight', [nEmbd], 'mul'),
      ...qkvTensors(hp, i, hp.fusedQkv),
      L('attn_output.weight', [hp.headDim * hp.nHead, nEmbd], 'mul_mat'),
      L('post_attention_norm.weight', [nEmbd], 'mul'),
      L('ffn_norm.weight', [nEmbd], 'mul'),
      L('ffn_gate.weight', [nEmbd, nFf], 'mul_mat'),
      L('ffn_up.weight', [nEmbd, nFf], 'mul_mat'),
      L('ffn_down.weight', [nFf, nEmbd], 'mul_mat'),
      L('post_ffw_norm.weight', [nEmbd], 'mul')
    )
    if (hp.qkNorm) out.push(L('attn_k_norm.weight', [hp.headDim], 'mul'), L('attn_q_norm.weight', [hp.headDim], 'mul'))
  }
  return out
}

/** inpL × sqrt(n_embd) (build_inp_embd + the gemma scale) */
export function gemmaInput (c: LayerContext, embd: Tensor): Tensor { return c.g.scale(embd, f32(Math.sqrt(c.hp.nEmbd))) }

export function buildGemmaLayer (c: LayerContext, il: number, inpL: Tensor): Tensor {
  const { g } = c
  const hp = c.hp as GemmaHParams
  const w = (s: string): Tensor => c.w(`blk.${il}.${s}`)!
  const swa = layerWindow(hp, il) > 0
  let cur = rmsNorm(c, inpL, w('attn_norm.weight'))
  let { q, k, v } = buildQkv(c, il, cur)
  const rope = {
    nDims: hp.nRot, mode: ROPE_MODE_NEOX, nCtxOrig: hp.nCtxOrig,
    freqBase: swa ? hp.ropeFreqBaseSwa : hp.ropeFreqBase, freqScale: swa ? hp.ropeFreqScaleSwa : hp.ropeFreqScale,
    extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1
  }
  if (hp.qkNorm) q = rmsNorm(c, q, w('attn_q_norm.weight'))
  q = g.ropeExt(q, c.pos, null, rope)
  if (hp.qkNorm) k = rmsNorm(c, k, w('attn_k_norm.weight'))
  k = g.ropeExt(k, c.pos, null, rope)
  q = g.scale(q, hp.qScale)
  cur = buildAttention(c, il, q, k, v, w('attn_output.weight'), undefined, 1, hp.attnSoftcap)
  if (il === hp.nLayers - 1 && c.outIds !== undefined) {
    cur = g.getRows(cur, c.outIds)
    inpL = g.getRows(inpL, c.outIds)
  }
  cur = rmsNorm(c, cur, w('post_attention_norm.weight'))
  const saOut = g.add(cur, inpL)
  cur = rmsNorm(c, saOut, w('ffn_norm.weight'))
  // build_ffn(LLM_FFN_GELU, LLM_FFN_PAR): down(geglu(gate(x), up(x)))
  const tmp = g.mulMat(w('ffn_up.weight'), cur)
  const gt = g.mulMat(w('ffn_gate.weight'), cur)
  cur = g.mulMat(w('ffn_down.weight'), g.gegluSplit(gt, tmp))
  cur = rmsNorm(c, cur, w('post_ffw_norm.weight'))
  return g.add(cur, saOut)
}

/** output_norm → lm_head → optional final logit softcap (cap · tanh(x / cap)) */
export function buildGemmaOutput (c: LayerContext, cur: Tensor): Tensor {
  const { g } = c
  const hp = c.hp as GemmaHParams
  let x = rmsNorm(c, cur, c.w('output_norm.weight')!)
  x = g.mulMat(c.w('output.weight')!, x)
  if (hp.finalSoftcap !== 0) x = g.scale(g.tanh(g.scale(x, f32(1 / hp.finalSoftcap))), hp.finalSoftcap)
  return x
}

export const gemma3: ArchSpec = {
  name: 'gemma3',
  hparams: gemma3HParams,
  tensors: (hp) => gemmaTensors(hp as GemmaHParams, false),
  buildInput: gemmaInput,
  buildLayer: buildGemmaLayer,
  buildOutput: buildGemmaOutput
}
