import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MetadataReader } from '../../../src/engine/gguf/metadata-reader.js'
import { deepseek2HParams } from '../../../src/engine/arch/deepseek2-hparams.js'
import { InvalidExpertConfigError, InvalidGgufError, UnsupportedModelError } from '../../../src/shared/errors/engine-errors.js'
import type { GgufFile, GgufValue } from '../../../src/engine/gguf/gguf-reader.js'
import type { HParams } from '../../../src/engine/hparams.js'

const TENSORS = new Map([1, 2].map((i) => [`blk.${i}.ffn_gate_up_exps.weight`, { name: '', ne: [], type: 0, path: 'm.gguf', fileOffset: 0, bytes: 0 }]))

function reader (kv: Record<string, GgufValue>): MetadataReader {
  const metadata = new Map(Object.entries(kv).map(([k, v]) => [`deepseek2.${k}`, v]))
  const gguf: GgufFile = { path: 'm.gguf', version: 3, fileBytes: 0, metadata, tensors: TENSORS, dataOffset: 0 }
  return new MetadataReader(gguf, 'deepseek2')
}

// DeepSeek V3's attention shape: kv_lora_rank 512, rope 64, qk_nope 128, v_head 128, stored as MQA (576 / 512)
const BASE: HParams = {
  nLayers: 3, nEmbd: 64, nHead: 4, nHeadKv: 1, headDim: 576, nFf: 128, nVocab: 100, contextLength: 4096, rmsEps: 1e-6, nRot: 64,
  ropeFreqBase: 1e4, ropeFreqScale: 1, nCtxOrig: 4096, attentionScale: 0, tiedOutput: false, ropeScalingType: 'none', valueDim: 512,
  nExpert: 8, nExpertUsed: 2
}
const KV: Record<string, GgufValue> = {
  'attention.q_lora_rank': 32, 'attention.kv_lora_rank': 512, 'attention.key_length_mla': 192, 'attention.value_length_mla': 128,
  'leading_dense_block_count': 1, 'expert_feed_forward_length': 32, 'expert_shared_count': 1, 'vocab_size': 100
}

describe('deepseek2HParams (llama.cpp load_arch_hparams + YaRN + kq_scale)', () => {
  it('V3 YaRN (factor 40, yarn_log_multiplier 0.1 · 0.707): rope attn factor 1 / (1 + 0.1 ln 40), kq_scale mscale² / sqrt(192)', () => {
    const hp = deepseek2HParams(reader({ ...KV, 'rope.scaling.type': 'yarn', 'rope.scaling.factor': 40, 'rope.scaling.yarn_log_multiplier': Math.fround(0.0707), 'expert_gating_func': 2 }), BASE)
    assert.equal(hp.isMla, true)
    assert.equal(hp.ropeFreqScale, Math.fround(1 / 40))
    assert.equal(hp.ropeExtFactor, 1)
    assert.ok(Math.abs(hp.ropeAttnFactor - 1 / (1 + 0.1 * Math.log(40))) < 1e-6)
    const mscale = 1 + 0.1 * 0.707 * Math.log(40)
    assert.ok(Math.abs(hp.kqScale - mscale * mscale / Math.sqrt(192)) < 1e-6, `kqScale ${hp.kqScale}`)
    assert.equal(hp.gating, 'sigmoid')
    assert.equal(hp.nLoraQ, 32)
  })

  it('no scaling: kq_scale = 1 / sqrt(key_length_mla), rope unscaled; no gating key → softmax (V2 files)', () => {
    const hp = deepseek2HParams(reader(KV), BASE)
    assert.equal(hp.kqScale, Math.fround(1 / Math.fround(Math.sqrt(192))))
    assert.equal(hp.ropeAttnFactor, 1)
    assert.equal(hp.ropeExtFactor, 0)
    assert.equal(hp.gating, 'softmax')
  })

  it('V2-Lite layer counts carry no q_lora_rank; others need it', () => {
    const { 'attention.q_lora_rank': _, ...noQ } = KV
    assert.equal(deepseek2HParams(reader({ ...noQ, leading_dense_block_count: 27 }), { ...BASE, nLayers: 27 }).nLoraQ, 0)
    assert.throws(() => deepseek2HParams(reader(noQ), BASE), (e: unknown) => e instanceof InvalidGgufError && /q_lora_rank is missing/.test(e.message))
  })

  it('multi-token-prediction blocks are cut from the trunk', () => {
    const hp = deepseek2HParams(reader({ ...KV, nextn_predict_layers: 1 }), { ...BASE, nLayers: 4 })
    assert.equal(hp.nLayers, 3)
    assert.throws(() => deepseek2HParams(reader({ ...KV, nextn_predict_layers: 3 }), BASE), InvalidGgufError)
  })

  it('rejects what llama.cpp would fail on with typed errors', () => {
    const invalid = (re: RegExp) => (e: unknown) => e instanceof InvalidGgufError && re.test(e.message)
    assert.throws(() => deepseek2HParams(reader(KV), { ...BASE, nHeadKv: 2 }), invalid(/head_count_kv = 1/))
    assert.throws(() => deepseek2HParams(reader(KV), { ...BASE, headDim: 512 }), invalid(/key_length 512 != kv_lora_rank 512 \+ rope 64/))
    assert.throws(() => deepseek2HParams(reader({ ...KV, 'attention.value_length_mla': 0 }), BASE), invalid(/both be set/))
    assert.throws(() => deepseek2HParams(reader({ ...KV, 'attention.key_length_mla': 64 }), BASE), invalid(/does not fit key_length_mla 64/))
    // legacy MHA form: head_count_kv must be head_count
    assert.throws(() => deepseek2HParams(reader({ ...KV, 'attention.key_length_mla': 0, 'attention.value_length_mla': 0 }), { ...BASE, headDim: 192, valueDim: 128 }), invalid(/head_count_kv = head_count/))
    assert.throws(() => deepseek2HParams(reader({ ...KV, 'rope.scaling.type': 'longrope' }), BASE), UnsupportedModelError)
    assert.throws(() => deepseek2HParams(reader({ ...KV, 'attention.temperature_scale': 0.5 }), BASE), UnsupportedModelError)
    assert.throws(() => deepseek2HParams(reader({ ...KV, expert_shared_count: 0 }), BASE), InvalidExpertConfigError)
    assert.throws(() => deepseek2HParams(reader({ ...KV, expert_group_count: 3, expert_group_used_count: 1 }), BASE), InvalidExpertConfigError)
  })
})
