import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MetadataReader } from '../../../src/engine/gguf/metadata-reader.js'
import { moeHParams, readGatingFunc } from '../../../src/engine/arch/moe-hparams.js'
import { InvalidExpertConfigError, UnsupportedModelError } from '../../../src/shared/errors/engine-errors.js'
import type { GgufFile, GgufValue } from '../../../src/engine/gguf/gguf-reader.js'
import type { HParams } from '../../../src/engine/hparams.js'

function reader (kv: Record<string, GgufValue>): MetadataReader {
  const gguf: GgufFile = { path: 'm.gguf', version: 3, fileBytes: 0, metadata: new Map(Object.entries(kv)), tensors: new Map(), dataOffset: 0 }
  return new MetadataReader(gguf, 'qwen3moe')
}

const BASE: HParams = {
  nLayers: 4, nEmbd: 64, nHead: 4, nHeadKv: 2, headDim: 16, nFf: 128, nVocab: 100, contextLength: 512, rmsEps: 1e-6, nRot: 16,
  ropeFreqBase: 1e4, ropeFreqScale: 1, nCtxOrig: 512, attentionScale: 0, tiedOutput: false, ropeScalingType: 'none', valueDim: 16,
  nExpert: 8, nExpertUsed: 2
}
const ARCH = { nFfExp: 32, expertWeightsScale: 0, expertWeightsNorm: true, gating: 'softmax' as const }
const invalid = (re: RegExp) => (e: unknown) => e instanceof InvalidExpertConfigError && re.test(e.message)

describe('moeHParams (llama.cpp load_hparams expert checks)', () => {
  it('accepts a consistent configuration and reads the expert groups', () => {
    const hp = moeHParams(reader({ 'qwen3moe.expert_group_count': 4, 'qwen3moe.expert_group_used_count': 2 }), BASE, { ...ARCH, nLayerDenseLead: 1 })
    assert.equal(hp.nExpertGroups, 4)
    assert.equal(hp.nGroupUsed, 2)
    assert.equal(hp.nLayerDenseLead, 1)
    assert.equal(hp.nFfExp, 32)
  })

  it('rejects what llama.cpp asserts on, with a typed error naming the key', () => {
    const m = reader({})
    assert.throws(() => moeHParams(m, { ...BASE, nExpert: 0 }, ARCH), invalid(/qwen3moe\.expert_count is missing or 0/))
    assert.throws(() => moeHParams(m, { ...BASE, nExpertUsed: 0 }, ARCH), invalid(/expert_used_count is missing or 0/))
    assert.throws(() => moeHParams(m, { ...BASE, nExpertUsed: 9 }, ARCH), invalid(/expert_used_count = 9 exceeds qwen3moe\.expert_count = 8/))
    assert.throws(() => moeHParams(m, { ...BASE, nExpert: 2000, nExpertUsed: 2 }, ARCH), invalid(/exceeds 1024/))
    assert.throws(() => moeHParams(reader({ 'qwen3moe.expert_group_count': 3, 'qwen3moe.expert_group_used_count': 1 }), BASE, ARCH), invalid(/not a multiple/))
    assert.throws(() => moeHParams(reader({ 'qwen3moe.expert_group_count': 4, 'qwen3moe.expert_group_used_count': 4 }), BASE, ARCH), invalid(/expert_group_used_count = 4 is not in \[1, 4\)/))
    assert.throws(() => moeHParams(reader({ 'qwen3moe.expert_group_count': 8 }), BASE, ARCH), invalid(/is not below expert_count/))
    assert.throws(() => moeHParams(m, BASE, { ...ARCH, nFfExp: 0 }), invalid(/feed-forward length 0/))
    assert.throws(() => moeHParams(m, BASE, { ...ARCH, nLayerDenseLead: 5 }), invalid(/leading_dense_block_count = 5 exceeds block_count 4/))
  })

  it('maps expert_gating_func, with the architecture default for 0 / absent', () => {
    assert.equal(readGatingFunc(reader({}), 'sigmoid'), 'sigmoid')
    assert.equal(readGatingFunc(reader({ 'qwen3moe.expert_gating_func': 0 }), 'sigmoid'), 'sigmoid')
    assert.equal(readGatingFunc(reader({ 'qwen3moe.expert_gating_func': 1 }), 'sigmoid'), 'softmax')
    assert.equal(readGatingFunc(reader({ 'qwen3moe.expert_gating_func': 3 }), 'softmax'), 'softmax_weight')
    assert.throws(() => readGatingFunc(reader({ 'qwen3moe.expert_gating_func': 4 }), 'softmax'), UnsupportedModelError)
  })
})
