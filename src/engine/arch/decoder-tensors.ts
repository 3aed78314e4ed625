import type { HParams } from '../hparams.js'
import type { TensorSpec } from './arch-spec.js'

/** Tensors of a llama-style decoder (llama, qwen2): the list llama.cpp's load_arch_tensors creates. */
export function decoderTensors (hp: HParams, opts: { outputBias: boolean, qkNorm?: boolean }): TensorSpec[] {
  const { nEmbd, nVocab, nFf } = hp
  const nEmbdQ = hp.headDim * hp.nHead
  const nEmbdKv = hp.headDim * hp.nHeadKv
  const out: TensorSpec[] = [
    { name: 'token_embd.weight', ne: [nEmbd, nVocab], role: 'embedding', op: 'get_rows' },
    { name: 'output_norm.weight', ne: [nEmbd], role: 'output', op: 'mul' },
    { name: 'output.weight', ne: [nEmbd, nVocab], role: 'output', op: 'mul_mat', optional: true }
  ]
  if (opts.outputBias) out.push({ name: 'output.bias', ne: [nVocab], role: 'output', op: 'add', optional: true })
  for (let i = 0; i < hp.nLayers; i++) {
    const b = (s: string): string => `blk.${i}.${s}`
    const L = (name: string, ne: number[], op: TensorSpec['op'], optional = false): TensorSpec => ({ name: b(name), ne, layer: i, role: 'layer', op, optional })
    out.push(
      L('attn_norm.weight', [nEmbd], 'mul'),
      L('attn_q.weight', [nEmbd, nEmbdQ], 'mul_mat'),
      L('attn_k.weight', [nEmbd, nEmbdKv], 'mul_mat'),
      L('attn_v.weight', [nEmbd, nEmbdKv], 'mul_mat'),
      L('attn_q.bias', [nEmbdQ], 'add', true),
      L('attn_k.bias', [nEmbdKv], 'add', true),
      L('attn_v.bias', [nEmbdKv], 'add', true),
      L('attn_output.weight', [nEmbdQ, nEmbd], 'mul_mat'),
      L('attn_output.bias', [nEmbd], 'add', true),
      L('ffn_norm.weight', [nEmbd], 'mul'),
      L('ffn_gate.weight', [nEmbd, nFf], 'mul_mat'),
      L('ffn_down.weight', [nFf, nEmbd], 'mul_mat'),
      L('ffn_up.weight', [nEmbd, nFf], 'mul_mat')
    )
    if (opts.qkNorm === true) out.push(L('attn_q_norm.weight', [hp.headDim], 'mul'), L('attn_k_norm.weight', [hp.headDim], 'mul'))
  }
  return out
}
