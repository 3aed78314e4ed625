import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MetadataReader } from '../../../src/engine/gguf/metadata-reader.js'
import { gemma2 } from '../../../src/engine/arch/gemma2.js'
import { gemma3 } from '../../../src/engine/arch/gemma3.js'
import { mistral3 } from '../../../src/engine/arch/mistral3.js'
import { phi3 } from '../../../src/engine/arch/phi3.js'
import { swaWindows } from '../../../src/engine/arch/swa-pattern.js'
import { attnTemperatures } from '../../../src/engine/forward-graph.js'
import { InvalidGgufError, UnsupportedModelError } from '../../../src/shared/errors/engine-errors.js'
import type { GgufFile, GgufValue } from '../../../src/engine/gguf/gguf-reader.js'
import type { HParams } from '../../../src/engine/hparams.js'
import type { GemmaHParams } from '../../../src/engine/arch/gemma3.js'

function reader (arch: string, kv: Record<string, GgufValue>, tensors: string[] = []): MetadataReader {
  const gguf: GgufFile = {
    path: 'm.gguf', version: 3, fileBytes: 0, metadata: new Map(Object.entries(kv).map(([k, v]) => [`${arch}.${k}`, v])),
    tensors: new Map(tensors.map((n) => [n, { name: n, ne: [1], type: 0, offset: 0, fileOffset: 0, bytes: 4 }] as never)), dataOffset: 0
  }
  return new MetadataReader(gguf, arch)
}

const BASE: HParams = {
  nLayers: 6, nEmbd: 256, nHead: 4, nHeadKv: 2, headDim: 64, nFf: 512, nVocab: 100, contextLength: 512, rmsEps: 1e-6, nRot: 64,
  ropeFreqBase: 1e6, ropeFreqScale: 1, nCtxOrig: 512, attentionScale: 0, tiedOutput: false, ropeScalingType: 'none', valueDim: 64,
  nExpert: 0, nExpertUsed: 0
}

describe('dense families: hyper-parameters as llama.cpp reads them', () => {
  it('sliding_window_pattern: a period (5 local : 1 global by default), dense_first, 0 = all, or one flag per layer', () => {
    assert.deepEqual(swaWindows(reader('gemma3', {}), 6, 8, 6), [8, 8, 8, 8, 8, 0])
    assert.deepEqual(swaWindows(reader('gemma3', { 'attention.sliding_window_pattern': 2 }), 4, 8, 6), [8, 0, 8, 0])
    assert.deepEqual(swaWindows(reader('x', { 'attention.sliding_window_pattern': 2 }), 4, 8, 6, true), [0, 8, 0, 8])
    assert.deepEqual(swaWindows(reader('x', { 'attention.sliding_window_pattern': 0 }), 3, 8, 6), [8, 8, 8])
    const flags = { arrayType: 7, length: 3, values: [true, false, true] }
    assert.deepEqual(swaWindows(reader('x', { 'attention.sliding_window_pattern': flags }), 3, 8, 6), [8, 0, 8])
    assert.throws(() => swaWindows(reader('x', { 'attention.sliding_window_pattern': flags }), 4, 8, 6), InvalidGgufError)
  })

  it('gemma3: local layers use freq_base_swa (default 10000) and scale 1, the 27B (62 layers) scales Q by n_embd / n_head', () => {
    const hp = gemma3.hparams!(reader('gemma3', { 'attention.sliding_window': 1024 }), { ...BASE, ropeFreqScale: 0.125, ropeScalingType: 'linear' }) as GemmaHParams
    assert.deepEqual(hp.swaWindow, [1024, 1024, 1024, 1024, 1024, 0])
    assert.equal(hp.ropeFreqBaseSwa, 10000)
    assert.equal(hp.ropeFreqScaleSwa, 1)
    assert.equal(hp.qScale, Math.fround(1 / 8))
    assert.equal(hp.finalSoftcap, 0)
    const big = gemma3.hparams!(reader('gemma3', {}), { ...BASE, nLayers: 62, nEmbd: 5376, nHead: 32, headDim: 128, valueDim: 128, nRot: 128 }) as GemmaHParams
    assert.equal(big.qScale, Math.fround(1 / Math.fround(Math.sqrt(168))))
    assert.deepEqual(big.swaWindow, new Array(62).fill(0), 'no attention.sliding_window: every layer global')
  })

  it('gemma2: window default 4096 on every other layer, softcaps 50 / 30, output = token_embd', () => {
    const hp = gemma2.hparams!(reader('gemma2', {}), BASE) as GemmaHParams
    assert.deepEqual(hp.swaWindow, [4096, 0, 4096, 0, 4096, 0])
    assert.equal(hp.attnSoftcap, 50)
    assert.equal(hp.finalSoftcap, 30)
    assert.equal(hp.tiedOutput, true)
    assert.equal(gemma2.tensors(hp).some((t) => t.name === 'output.weight'), false)
  })

  it('unsupported variants are typed errors', () => {
    assert.throws(() => phi3.hparams!(reader('phi3', {}), { ...BASE, nExpert: 16 }), UnsupportedModelError)
    assert.throws(() => phi3.hparams!(reader('phi3', {}), { ...BASE, ropeScalingType: 'yarn' }), UnsupportedModelError)
    assert.throws(() => phi3.hparams!(reader('phi3', {}), { ...BASE, nHead: 8 }), InvalidGgufError)
    assert.throws(() => mistral3.hparams!(reader('mistral3', {}), { ...BASE, nExpert: 8 }), UnsupportedModelError)
    assert.throws(() => mistral3.hparams!(reader('mistral3', { 'rope.scaling.type': 'su' }), BASE), UnsupportedModelError)
    assert.throws(() => gemma3.hparams!(reader('gemma3', {}), { ...BASE, rmsEps: 0 }), InvalidGgufError)
    assert.throws(() => gemma3.hparams!(reader('gemma3', {}, ['blk.0.attn_qkv.weight', 'blk.0.attn_q.bias']), BASE), UnsupportedModelError)
  })

  it('mistral3: YaRN attention factor and the llama-4 temperature per position, in f32 as llama.cpp', () => {
    const hp = mistral3.hparams!(reader('mistral3', { 'rope.scaling.type': 'yarn', 'rope.scaling.factor': 16, 'attention.temperature_scale': 0.1 }), { ...BASE, nCtxOrig: 16384 })
    const f = Math.fround
    const logf = (x: number): number => f(Math.log(x))
    const mscale = f(f(f(f(0.1) * 1) * logf(16)) + 1)
    assert.equal((hp as unknown as { rope: { attnFactor: number, extFactor: number } }).rope.attnFactor, f(mscale * f(1 / f(1 + f(f(0.1) * logf(16))))))
    assert.equal((hp as unknown as { rope: { extFactor: number } }).rope.extFactor, 1)
    assert.deepEqual([...attnTemperatures(Int32Array.from([0, 16383, 16384, 40000]), hp.attnTemperature!)], [1, 1, f(Math.log(2) * f(0.1) + 1), f(Math.log(3) * f(0.1) + 1)])
  })
})
