/** The routed-expert tensors of one layer (names and shapes as llama.cpp's load_arch_tensors creates them) and their lookup. */
import type { Tensor } from '../native/ggml.js'
import type { LayerContext, TensorSpec } from './arch-spec.js'
import type { MoeFfnWeights } from './moe-ffn.js'
import type { MoeHParams } from './moe-hparams.js'

export interface MoeTensorOptions {
  /** FFN width of one expert (default hp.nFfExp) */
  nFf?: number
  /** ffn_gate_exps: required (default), optional (llama: ungated experts allowed) */
  gateOptional?: boolean
  /** gpt-oss: ffn_gate_inp.bias and the per-expert ffn_{gate,up,down}_exps.bias */
  biases?: boolean
  /** DeepSeek V3 / GLM-4.5: exp_probs_b.bias selection bias (required when true) */
  expProbsB?: boolean
  /** list the optional per-expert ffn_*_exps.scale tensors (default true; false where the arch's graph passes none) */
  scales?: boolean
  /** ffn_gate_up_exps (fused, optional): when present it replaces gate_exps and up_exps (create_tensor_gate_up_exps) */
  fusedGateUp?: boolean
}

/** TensorSpecs of layer i's router and experts; 3-D expert tensors are (ne0, ne1, nExpert). */
export function moeTensors (hp: MoeHParams, i: number, o: MoeTensorOptions = {}): TensorSpec[] {
  const { nEmbd, nExpert } = hp
  const nFf = o.nFf ?? hp.nFfExp
  const L = (name: string, ne: number[], op: TensorSpec['op'], optional = false): TensorSpec => ({ name: `blk.${i}.${name}`, ne, layer: i, role: 'layer', op, optional })
  // when a fused gate_up is allowed, the separate ones become optional (exactly one form must be present: checked by the arch)
  const sepOptional = o.fusedGateUp === true
  const out: TensorSpec[] = [
    L('ffn_gate_inp.weight', [nEmbd, nExpert], 'mul_mat'),
    L('ffn_gate_exps.weight', [nEmbd, nFf, nExpert], 'mul_mat_id', o.gateOptional === true || sepOptional),
    L('ffn_down_exps.weight', [nFf, nEmbd, nExpert], 'mul_mat_id'),
    L('ffn_up_exps.weight', [nEmbd, nFf, nExpert], 'mul_mat_id', sepOptional)
  ]
  if (o.scales !== false) {
    // per-expert scales (llama_model::load_tensors adds them to every MoE layer, optional)
    out.push(L('ffn_gate_exps.scale', [nExpert], 'mul_mat_id', true), L('ffn_down_exps.scale', [nExpert], 'mul_mat_id', true), L('ffn_up_exps.scale', [nExpert], 'mul_mat_id', true))
  }
  if (o.fusedGateUp === true) out.push(L('ffn_gate_up_exps.weight', [nEmbd, 2 * nFf, nExpert], 'mul_mat_id', true))
  if (o.biases === true) {
    out.push(
      L('ffn_gate_inp.bias', [nExpert], 'add'),
      L('ffn_gate_exps.bias', [nFf, nExpert], 'add_id'),
      L('ffn_down_exps.bias', [nEmbd, nExpert], 'add_id'),
      L('ffn_up_exps.bias', [nFf, nExpert], 'add_id')
    )
  }
  if (o.expProbsB === true) out.push(L('exp_probs_b.bias', [nExpert], 'add'))
  return out
}

/** Layer il's expert weights by role (absent optional tensors stay undefined). */
export function moeWeights (c: LayerContext, il: number): MoeFfnWeights {
  const w = (s: string): Tensor | undefined => c.w(`blk.${il}.${s}`)
  const gateUp = w('ffn_gate_up_exps.weight')
  return {
    gateInp: w('ffn_gate_inp.weight')!,
    gateInpB: w('ffn_gate_inp.bias'),
    up: gateUp === undefined ? w('ffn_up_exps.weight') : undefined,
    upB: w('ffn_up_exps.bias'),
    gate: gateUp === undefined ? w('ffn_gate_exps.weight') : undefined,
    gateB: w('ffn_gate_exps.bias'),
    down: w('ffn_down_exps.weight')!,
    downB: w('ffn_down_exps.bias'),
    gateUp,
    upS: w('ffn_up_exps.scale'),
    gateS: w('ffn_gate_exps.scale'),
    downS: w('ffn_down_exps.scale'),
    expProbsB: w('exp_probs_b.bias')
  }
}

/** Graph-size bound for a MoE layer: attention (~40 tensors) + routing (~30) + 2 per used expert (views, adds). */
export function moeNodesPerLayer (hp: MoeHParams): number {
  return 112 + 4 * hp.nExpertUsed
}

/**
 * f32 values per token a MoE layer's graph holds at once (ArchSpec.activationFloatsPerToken, for the planner's
 * compute-buffer bound): the residual stream, then the widest of attention (Q, K, V, output), the dense FFN of
 * dense layers, and the MoE block (router logits / probs / selection / weights, each used expert's up, gate,
 * activation and down with its weighted copy and running sum, the shared experts `sharedFf` wide).
 */
export function moeActivationFloats (hp: MoeHParams, sharedFf = 0): number {
  const { nEmbd } = hp
  const attn = 2 * hp.nHead * hp.headDim + 2 * hp.nHeadKv * hp.headDim + nEmbd
  const dense = hp.nLayerDenseLead > 0 ? 3 * hp.nFf + nEmbd : 0
  const moe = 8 * hp.nExpert + hp.nExpertUsed * (3 * hp.nFfExp + 3 * nEmbd) + 3 * sharedFf + 2 * nEmbd
  return 4 * nEmbd + Math.max(attn, dense, moe)
}
