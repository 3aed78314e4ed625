/**
 * Generator for `deepseek2` (DeepSeek V2 / V3 / R1, Kimi K2): multi-head latent attention in the absorbed form
 * current conversions write (attn_k_b / attn_v_b), optional q LoRA, leading dense blocks, then MoE blocks with
 * shared experts, optional expert groups (group-limited routing), softmax or sigmoid gating (+ exp_probs_b),
 * optional YaRN RoPE scaling. Keys and shapes as llama.cpp's convert_hf_to_gguf.py (DeepseekV2Model) writes them.
 *
 * --opt keys (defaults in brackets): qLora [0 = V2-Lite style wq], kvLora [64], qkNope [32], qkRope [16],
 * vHead [32], denseLead [layers], experts [8], expertsUsed [2], ffExp [64], shared [1], groups [0], groupsUsed [0],
 * gating [softmax|sigmoid], probsBias [false], weightsNorm [false], weightsScale [0 = absent],
 * yarn [false], yarnFactor [4], yarnOrigCtx [512], yarnLogMul [0.1 = 0.1 * mscale_all_dim],
 * legacy [false: an older conversion with the unsplit attn_kv_b, MHA keys and no *_mla keys],
 * nextn [0: multi-token-prediction blocks after the trunk, counted in block_count, no tensors].
 */
import { embeddingTensors, vocabOf, F32 } from './llama.js'
import { optBool, optNum } from './types.js'
import type { ArchGenerator, GenOptions, GenTensor } from './types.js'
import type { KvValue } from '../../src/engine/native/gguf-writer.js'

/** The shape options of a generated deepseek2 model. */
export interface Deepseek2Shape {
  qLora: number, kvLora: number, qkNope: number, qkRope: number, vHead: number, denseLead: number,
  experts: number, expertsUsed: number, ffExp: number, shared: number, groups: number, groupsUsed: number,
  gating: 'softmax' | 'sigmoid', probsBias: boolean
}

export function deepseek2Shape (o: GenOptions): Deepseek2Shape {
  const gating = String(o.arch.gating ?? 'softmax')
  if (gating !== 'softmax' && gating !== 'sigmoid') throw new Error(`--opt gating=${gating}: expected softmax or sigmoid`)
  return {
    qLora: optNum(o, 'qLora', 0),
    kvLora: optNum(o, 'kvLora', 64),
    qkNope: optNum(o, 'qkNope', 32),
    qkRope: optNum(o, 'qkRope', 16),
    vHead: optNum(o, 'vHead', 32),
    denseLead: optNum(o, 'denseLead', o.layers),
    experts: optNum(o, 'experts', 8),
    expertsUsed: optNum(o, 'expertsUsed', 2),
    ffExp: optNum(o, 'ffExp', 64),
    shared: optNum(o, 'shared', 1),
    groups: optNum(o, 'groups', 0),
    groupsUsed: optNum(o, 'groupsUsed', 0),
    gating,
    probsBias: optBool(o, 'probsBias', false)
  }
}

function metadata (o: GenOptions, a: (k: string) => string): Record<string, KvValue> {
  const s = deepseek2Shape(o)
  const kv: Record<string, KvValue> = {
    [a('context_length')]: { kind: 'u32', value: o.context },
    [a('embedding_length')]: { kind: 'u32', value: o.embd },
    // nextn: multi-token-prediction blocks counted in block_count; written without tensors (llama.cpp then runs the trunk only)
    [a('block_count')]: { kind: 'u32', value: o.layers + optNum(o, 'nextn', 0) },
    [a('feed_forward_length')]: { kind: 'u32', value: o.ff },
    [a('attention.head_count')]: { kind: 'u32', value: o.heads },
    // MLA is written as MQA over (kv_lora_rank + rope) wide keys
    [a('attention.head_count_kv')]: { kind: 'u32', value: 1 },
    [a('attention.key_length')]: { kind: 'u32', value: s.kvLora + s.qkRope },
    [a('attention.value_length')]: { kind: 'u32', value: s.kvLora },
    [a('attention.key_length_mla')]: { kind: 'u32', value: s.qkNope + s.qkRope },
    [a('attention.value_length_mla')]: { kind: 'u32', value: s.vHead },
    [a('attention.layer_norm_rms_epsilon')]: { kind: 'f32', value: 1e-6 },
    [a('attention.kv_lora_rank')]: { kind: 'u32', value: s.kvLora },
    // V2-Lite files carry no q_lora_rank; llama.cpp requires it for other layer counts, 0 selects attn_q
    [a('attention.q_lora_rank')]: { kind: 'u32', value: s.qLora },
    [a('rope.dimension_count')]: { kind: 'u32', value: s.qkRope },
    [a('rope.freq_base')]: { kind: 'f32', value: 10000 },
    [a('leading_dense_block_count')]: { kind: 'u32', value: s.denseLead },
    [a('expert_feed_forward_length')]: { kind: 'u32', value: s.ffExp },
    [a('expert_shared_count')]: { kind: 'u32', value: s.shared },
    [a('vocab_size')]: { kind: 'u32', value: vocabOf(o) }
  }
  if (optNum(o, 'nextn', 0) > 0) kv[a('nextn_predict_layers')] = { kind: 'u32', value: optNum(o, 'nextn', 0) }
  if (optBool(o, 'legacy', false)) {
    kv[a('attention.head_count_kv')] = { kind: 'u32', value: o.heads }
    kv[a('attention.key_length')] = { kind: 'u32', value: s.qkNope + s.qkRope }
    kv[a('attention.value_length')] = { kind: 'u32', value: s.vHead }
    delete kv[a('attention.key_length_mla')]
    delete kv[a('attention.value_length_mla')]
  }
  if (s.denseLead < o.layers) {
    kv[a('expert_count')] = { kind: 'u32', value: s.experts }
    kv[a('expert_used_count')] = { kind: 'u32', value: s.expertsUsed }
    kv[a('expert_gating_func')] = { kind: 'u32', value: s.gating === 'softmax' ? 1 : 2 }
    if (s.groups > 0) {
      kv[a('expert_group_count')] = { kind: 'u32', value: s.groups }
      kv[a('expert_group_used_count')] = { kind: 'u32', value: s.groupsUsed }
    }
    if (optBool(o, 'weightsNorm', false)) kv[a('expert_weights_norm')] = { kind: 'bool', value: true }
    const scale = optNum(o, 'weightsScale', 0)
    if (scale !== 0) kv[a('expert_weights_scale')] = { kind: 'f32', value: scale }
  }
  if (optBool(o, 'yarn', false)) {
    kv[a('rope.scaling.type')] = { kind: 'str', value: 'yarn' }
    kv[a('rope.scaling.factor')] = { kind: 'f32', value: optNum(o, 'yarnFactor', 4) }
    kv[a('rope.scaling.original_context_length')] = { kind: 'u32', value: optNum(o, 'yarnOrigCtx', 512) }
    kv[a('rope.scaling.yarn_log_multiplier')] = { kind: 'f32', value: optNum(o, 'yarnLogMul', 0.1) }
  }
  return kv
}

function tensors (o: GenOptions): GenTensor[] {
  const s = deepseek2Shape(o)
  const out = embeddingTensors(o, vocabOf(o))
  const w = o.weightType
  const se = 1 / Math.sqrt(o.embd)
  const kHead = s.qkNope + s.qkRope
  for (let i = 0; i < o.layers; i++) {
    const b = `blk.${i}.`
    const T = (name: string, ne: number[], scale: number, type = w): GenTensor => ({ name: b + name, ne, type, init: 'random', scale })
    // norms: random around 1 so that a mixed-up norm shows in the logits
    const N = (name: string, n: number): GenTensor => ({ name: b + name, ne: [n], type: F32, init: 'random', scale: 1 })
    out.push(N('attn_norm.weight', o.embd))
    if (s.qLora > 0) {
      out.push(T('attn_q_a.weight', [o.embd, s.qLora], 2 * se), N('attn_q_a_norm.weight', s.qLora),
        T('attn_q_b.weight', [s.qLora, o.heads * kHead], 2 / Math.sqrt(s.qLora)))
    } else {
      out.push(T('attn_q.weight', [o.embd, o.heads * kHead], 2 * se))
    }
    out.push(
      T('attn_kv_a_mqa.weight', [o.embd, s.kvLora + s.qkRope], 2 * se),
      N('attn_kv_a_norm.weight', s.kvLora),
      ...optBool(o, 'legacy', false)
        ? [T('attn_kv_b.weight', [s.kvLora, o.heads * (s.qkNope + s.vHead)], 1 / Math.sqrt(s.kvLora))]
        : [T('attn_k_b.weight', [s.qkNope, s.kvLora, o.heads], 2 / Math.sqrt(s.qkNope)), T('attn_v_b.weight', [s.kvLora, s.vHead, o.heads], 1 / Math.sqrt(s.kvLora))],
      T('attn_output.weight', [o.heads * s.vHead, o.embd], 1 / Math.sqrt(o.heads * s.vHead)),
      N('ffn_norm.weight', o.embd)
    )
    if (i < s.denseLead) {
      out.push(T('ffn_gate.weight', [o.embd, o.ff], se), T('ffn_down.weight', [o.ff, o.embd], 1 / Math.sqrt(o.ff)), T('ffn_up.weight', [o.embd, o.ff], se))
      continue
    }
    out.push(T('ffn_gate_inp.weight', [o.embd, s.experts], 4 * se, F32))
    if (s.probsBias) out.push({ name: `${b}exp_probs_b.bias`, ne: [s.experts], type: F32, init: 'random', scale: 0.1 })
    const sf = 1 / Math.sqrt(s.ffExp)
    out.push(
      T('ffn_gate_exps.weight', [o.embd, s.ffExp, s.experts], se),
      T('ffn_down_exps.weight', [s.ffExp, o.embd, s.experts], sf),
      T('ffn_up_exps.weight', [o.embd, s.ffExp, s.experts], se),
      T('ffn_gate_shexp.weight', [o.embd, s.ffExp * s.shared], se),
      T('ffn_down_shexp.weight', [s.ffExp * s.shared, o.embd], sf / Math.sqrt(s.shared)),
      T('ffn_up_shexp.weight', [o.embd, s.ffExp * s.shared], se)
    )
  }
  return out
}

export const deepseek2Gen: ArchGenerator = { name: 'deepseek2', metadata, tensors }
