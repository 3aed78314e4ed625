/**
 * Port of llama.cpp's llm_graph_context::build_moe_ffn (src/llama-graph.cpp), the one routed-experts FFN every
 * mixture-of-experts architecture here uses: same ggml ops, same order, same expands.
 *
 *   logits  = gate_inp · x (+ gate_inp_b)                      (nExpert, nTokens)
 *   probs   = softmax | sigmoid | identity (softmax_weight)    (nExpert, nTokens)
 *   select  = probs (+ exp_probs_b)  → group mask (n_expert_groups > 1) → argsort_top_k(nExpertUsed)
 *   weights = get_rows(probs, selected) → softmax (softmax_weight) → / sum (normW) → × wScale
 *   experts = down_exps ⊛ act(gate_exps ⊛ x, up_exps ⊛ x)       ⊛ = ggml_mul_mat_id over the selected experts
 *   out     = Σ_i experts[:, i] × weights[i]                     summed left to right, as llama.cpp
 *
 * Not ported (no architecture here uses them): llama4's weight-before-FFN, grovemoe's chunked experts,
 * swiglu_clamp_exp limits, LoRA adapters, sqrt_softplus gating, the SITU / RELU activations.
 */
import { tensorNb, tensorNe } from '../native/ggml.js'
import type { Tensor } from '../native/ggml.js'
import type { LayerContext } from './arch-spec.js'
import type { GatingFunc } from './moe-hparams.js'

/** LLM_FFN_SILU (swiglu with a gate, silu without), LLM_FFN_GELU (geglu / gelu), LLM_FFN_SWIGLU_OAI_MOE (gpt-oss). */
export type MoeActivation = 'silu' | 'gelu' | 'swiglu_oai'

/** The expert weights of one layer, by role (GGUF ne order: ne[0] first). */
export interface MoeFfnWeights {
  /** ffn_gate_inp.weight (nEmbd, nExpert) — the router */
  gateInp: Tensor
  /** ffn_gate_inp.bias (nExpert) */
  gateInpB?: Tensor
  /** ffn_up_exps.weight (nEmbd, nFfExp, nExpert); required unless gateUp is given */
  up?: Tensor
  /** ffn_up_exps.bias (nFfExp, nExpert), added per selected expert (ggml_add_id) */
  upB?: Tensor
  /** ffn_gate_exps.weight (nEmbd, nFfExp, nExpert); absent = ungated (act(up)) */
  gate?: Tensor
  gateB?: Tensor
  /** ffn_down_exps.weight (nFfExp, nEmbd, nExpert) */
  down: Tensor
  downB?: Tensor
  /** ffn_gate_up_exps.weight (nEmbd, 2 nFfExp, nExpert): fused gate (first half) and up (second half) */
  gateUp?: Tensor
  gateUpB?: Tensor
  /** per-expert scales (nExpert) of up (or gate_up), gate and down: ffn_*_exps.scale */
  upS?: Tensor
  gateS?: Tensor
  downS?: Tensor
  /** exp_probs_b.bias (nExpert): selection bias (DeepSeek V3, GLM-4.5); the weights stay unbiased */
  expProbsB?: Tensor
}

export interface MoeFfnOptions {
  nExpert: number
  /** experts per token (≤ nExpert) */
  nExpertUsed: number
  activation: MoeActivation
  /** divide the selected weights by their sum (clamped below at 2^-14 as llama.cpp) */
  normW: boolean
  /** multiply the weights by this unless 0 or 1 */
  wScale: number
  gating: GatingFunc
  /** group-limited routing (DeepSeek V3 / Kimi K2): keep the nGroupUsed groups with the best top-2 sums; 0 or 1 = off */
  nExpertGroups?: number
  nGroupUsed?: number
}

/** gpt-oss' swiglu_oai constants (llama.cpp: "TODO: move to hparams?") */
const OAI_ALPHA = 1.702
const OAI_LIMIT = 7.0
/** smallest normal f16: llama.cpp clamps the weight sum to it before dividing */
const F16_MIN_NORMAL = 6.103515625e-5

/** mul_mat_id plus the per-expert scale of build_lora_mm_id. cur: (nEmbd or nFf, 1 or nUsed, nTokens). */
function mmId (c: LayerContext, w: Tensor, cur: Tensor, ids: Tensor, s: Tensor | undefined, nExpert: number, nTokens: number): Tensor {
  const { g } = c
  let res = g.mulMatId(w, cur, ids)
  if (s !== undefined) {
    let sc = g.reshape3d(s, 1, nExpert, 1)
    sc = g.repeat4d(sc, 1, nExpert, nTokens, 1)
    sc = g.getRows(sc, ids)
    res = g.mul(res, sc)
  }
  return res
}

/**
 * @param cur (nEmbd, nTokens) f32 — the FFN input (after ffn_norm)
 * @returns (nEmbd, nTokens) f32 — the weighted sum of the selected experts' outputs
 * Shapes are validated by describeModel (tensor specs) and moeHParams before any native call.
 */
export function buildMoeFfn (c: LayerContext, cur: Tensor, w: MoeFfnWeights, o: MoeFfnOptions): Tensor {
  const { g } = c
  const [nEmbd, nTokens] = tensorNe(cur)
  const { nExpert, nExpertUsed } = o

  let logits = g.mulMat(w.gateInp, cur) // [n_expert, n_tokens]
  if (w.gateInpB !== undefined) logits = g.add(logits, w.gateInpB)

  let probs = o.gating === 'softmax' ? g.softMax(logits) : o.gating === 'sigmoid' ? g.sigmoid(logits) : logits

  // selection bias: leave probs unbiased, they give the weights
  let selectionProbs = probs
  if (w.expProbsB !== undefined) selectionProbs = g.add(probs, w.expProbsB)

  const groups = o.nExpertGroups ?? 0
  if (groups > 1 && nTokens > 0) {
    const perGroup = nExpert / groups
    const selectionGroups = g.reshape3d(selectionProbs, perGroup, groups, nTokens) // [per_group, groups, n_tokens]
    let groupScores = g.argsortTopK(selectionGroups, 2) // [2, groups, n_tokens]
    groupScores = g.getRows(g.reshape4d(selectionGroups, 1, perGroup, groups, nTokens), groupScores) // [1, 2, groups, n_tokens]
    const gs = tensorNe(groupScores)
    groupScores = g.sumRows(g.reshape3d(groupScores, gs[1], gs[2], gs[3])) // [1, groups, n_tokens]
    const gs2 = tensorNe(groupScores)
    groupScores = g.reshape2d(groupScores, gs2[1], gs2[2]) // [groups, n_tokens]
    const expertGroups = g.argsortTopK(groupScores, o.nGroupUsed!) // [n_group_used, n_tokens]
    // mask out the other groups
    selectionProbs = g.getRows(selectionGroups, expertGroups) // [per_group, n_group_used, n_tokens]
    selectionProbs = g.setRows(g.fill(selectionGroups, -Infinity), selectionProbs, expertGroups) // [per_group, groups, n_tokens]
    selectionProbs = g.reshape2d(selectionProbs, nExpert, nTokens)
  }

  const selected = g.argsortTopK(selectionProbs, nExpertUsed) // [n_expert_used, n_tokens] i32
  probs = g.reshape3d(probs, 1, nExpert, nTokens)
  let weights = g.getRows(probs, selected) // [1, n_expert_used, n_tokens]
  if (o.gating === 'softmax_weight') {
    weights = g.reshape2d(weights, nExpertUsed, nTokens)
    weights = g.softMax(weights)
    weights = g.reshape3d(weights, 1, nExpertUsed, nTokens)
  }
  if (o.normW) {
    weights = g.reshape2d(weights, nExpertUsed, nTokens)
    let sum = g.sumRows(weights) // [1, n_tokens]
    sum = g.clamp(sum, F16_MIN_NORMAL, Infinity)
    weights = g.div(weights, sum)
    weights = g.reshape3d(weights, 1, nExpertUsed, nTokens)
  }
  if (o.wScale !== 0 && o.wScale !== 1) weights = g.scale(weights, o.wScale)
  g.expand(weights)

  let x = g.reshape3d(cur, nEmbd, 1, nTokens)
  let up: Tensor
  if (w.gateUp !== undefined) {
    let gateUp = mmId(c, w.gateUp, x, selected, w.upS, nExpert, nTokens) // [2 n_ff, n_expert_used, n_tokens]
    if (w.gateUpB !== undefined) gateUp = g.addId(gateUp, w.gateUpB, selected)
    const ne = tensorNe(gateUp)
    const nb = tensorNb(gateUp)
    const nFf = ne[0] / 2
    x = g.view3d(gateUp, nFf, ne[1], ne[2], nb[1], nb[2], 0)
    up = g.view3d(gateUp, nFf, ne[1], ne[2], nb[1], nb[2], nFf * nb[0])
  } else {
    up = mmId(c, w.up!, x, selected, w.upS, nExpert, nTokens) // [n_ff, n_expert_used, n_tokens]
    if (w.upB !== undefined) up = g.addId(up, w.upB, selected)
    x = w.gate !== undefined ? mmId(c, w.gate, x, selected, w.gateS, nExpert, nTokens) : up
    if (w.gateB !== undefined) x = g.addId(x, w.gateB, selected)
  }
  const hasGate = w.gate !== undefined || w.gateUp !== undefined
  if (o.activation === 'silu') x = hasGate ? g.swigluSplit(x, up) : g.silu(x)
  else if (o.activation === 'gelu') x = hasGate ? g.gegluSplit(x, up) : g.gelu(x)
  else x = g.swigluOai(x, up, OAI_ALPHA, OAI_LIMIT)

  let experts = mmId(c, w.down, x, selected, w.downS, nExpert, nTokens) // [n_embd, n_expert_used, n_tokens]
  if (w.downB !== undefined) experts = g.addId(experts, w.downB, selected)
  experts = g.mul(experts, weights)
  g.expand(experts)

  // order the views before the adds
  const ne = tensorNb(experts)
  const views: Tensor[] = []
  for (let i = 0; i < nExpertUsed; i++) {
    const v = g.view2d(experts, nEmbd, nTokens, ne[2], i * ne[1])
    g.expand(v)
    views.push(v)
  }
  let out = views[0]!
  for (let i = 1; i < nExpertUsed; i++) {
    out = g.add(out, views[i]!)
    g.expand(out)
  }
  // avoid returning a non-contiguous tensor
  if (nExpertUsed === 1) out = g.cont(out)
  return out
}
