/** llama.cpp's create_tensor_qkv + build_qkv: a fused attn_qkv (optionally with bias) or separate Q/K/V (optional biases). */
import { UnsupportedModelError } from '../../shared/errors/engine-errors.js'
import type { Tensor } from '../native/ggml.js'
import type { HParams } from '../hparams.js'
import type { GgufFile } from '../gguf/gguf-reader.js'
import type { LayerContext, TensorSpec } from './arch-spec.js'

/** Does the file carry fused attn_qkv weights? (create_tensor_qkv tries them first) */
export function hasFusedQkv (gguf: GgufFile): boolean {
  const fused = gguf.tensors.has('blk.0.attn_qkv.weight')
  if (fused && !gguf.tensors.has('blk.0.attn_qkv.bias') && gguf.tensors.has('blk.0.attn_q.bias')) {
    throw new UnsupportedModelError(`${gguf.path}: fused attn_qkv with separate Q/K/V biases is not supported`)
  }
  return fused
}

/** Q/K/V weight specs of layer i (nq = headDim·nHead, nk = nv = headDim·nHeadKv). */
export function qkvTensors (hp: HParams, i: number, fused: boolean): TensorSpec[] {
  const nq = hp.headDim * hp.nHead
  const nk = hp.headDim * hp.nHeadKv
  const nv = hp.valueDim * hp.nHeadKv
  const L = (name: string, ne: number[], op: TensorSpec['op'], optional = false): TensorSpec => ({ name: `blk.${i}.${name}`, ne, layer: i, role: 'layer', op, optional })
  const biases = [L('attn_q.bias', [nq], 'add', true), L('attn_k.bias', [nk], 'add', true), L('attn_v.bias', [nv], 'add', true)]
  if (fused) return [L('attn_qkv.weight', [hp.nEmbd, nq + nk + nv], 'mul_mat'), L('attn_qkv.bias', [nq + nk + nv], 'add', true)]
  return [L('attn_q.weight', [hp.nEmbd, nq], 'mul_mat'), L('attn_k.weight', [hp.nEmbd, nk], 'mul_mat'), L('attn_v.weight', [hp.nEmbd, nv], 'mul_mat'), ...biases]
}

/**
 * build_qkv: cur (nEmbd, nTokens) f32 → q (headDim, nHead, nTokens), k (headDim, nHeadKv, nTokens), v (valueDim, nHeadKv, nTokens).
 * Fused: q/k/v are views into one (nq + nk + nv, nTokens) product, as llama.cpp makes them.
 */
export function buildQkv (c: LayerContext, il: number, cur: Tensor): { q: Tensor, k: Tensor, v: Tensor } {
  const { g, hp, nTokens } = c
  const opt = (s: string): Tensor | undefined => c.w(`blk.${il}.${s}`)
  const nq = hp.headDim * hp.nHead
  const nk = hp.headDim * hp.nHeadKv
  const nv = hp.valueDim * hp.nHeadKv
  const wqkv = opt('attn_qkv.weight')
  if (wqkv !== undefined) {
    let qkv = g.mulMat(wqkv, cur)
    const b = opt('attn_qkv.bias')
    if (b !== undefined) qkv = g.add(qkv, b)
    const nb1 = 4 * (nq + nk + nv)
    return {
      q: g.view3d(qkv, hp.headDim, hp.nHead, nTokens, 4 * hp.headDim, nb1, 0),
      k: g.view3d(qkv, hp.headDim, hp.nHeadKv, nTokens, 4 * hp.headDim, nb1, 4 * nq),
      v: g.view3d(qkv, hp.valueDim, hp.nHeadKv, nTokens, 4 * hp.valueDim, nb1, 4 * (nq + nk))
    }
  }
  let q = g.mulMat(c.w(`blk.${il}.attn_q.weight`)!, cur)
  const bq = opt('attn_q.bias'); if (bq !== undefined) q = g.add(q, bq)
  let k = g.mulMat(c.w(`blk.${il}.attn_k.weight`)!, cur)
  const bk = opt('attn_k.bias'); if (bk !== undefined) k = g.add(k, bk)
  let v = g.mulMat(c.w(`blk.${il}.attn_v.weight`)!, cur)
  const bv = opt('attn_v.bias'); if (bv !== undefined) v = g.add(v, bv)
  return { q: g.reshape3d(q, hp.headDim, hp.nHead, nTokens), k: g.reshape3d(k, hp.headDim, hp.nHeadKv, nTokens), v: g.reshape3d(v, hp.valueDim, hp.nHeadKv, nTokens) }
}
