/**
 * The memory and speed model for mixture-of-experts models (issue 10.4): a layer's bytes include every expert
 * (the 3-D ffn_*_exps tensors, router, shared experts), the loaded shard really holds them, and the per-layer
 * speed probe runs a real layer with its active experts, so its time grows with expert_used_count.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { describeModel } from '../../src/engine/model-description.js'
import { loadShard } from '../../src/engine/index.js'
import { ggmlShardEngine } from '../../src/node/ggml-shard-engine.js'
import { probeLayerSpeed } from '../../src/node/pipeline/capability-probe.js'
import { generatedModel } from './helpers/generated-models.js'

describe('MoE memory and speed model', () => {
  it('layerBytes counts every tensor of a layer, all experts included; a loaded shard holds them', async () => {
    for (const path of [
      generatedModel('q4_k', { arch: 'qwen3moe', layers: 3, archOptions: { experts: 8, experts_used: 2, expert_ff: 256 } }),
      generatedModel('q8_0', { arch: 'glm4moe', layers: 3, archOptions: { experts: 8, experts_used: 2, expert_ff: 128, scale: 2.5, nextn: 1 } })
    ]) {
      const d = describeModel(path)
      const meta = d.metadata
      for (let il = 0; il < meta.nLayers; il++) {
        const tensors = [...d.gguf.tensors.values()].filter((t) => t.name.startsWith(`blk.${il}.`))
        const all = tensors.reduce((a, t) => a + t.bytes, 0)
        const experts = tensors.filter((t) => t.name.includes('_exps.')).reduce((a, t) => a + t.bytes, 0)
        assert.equal(meta.layerBytes[il], all, `${d.arch.name} layer ${il}: layerBytes ${meta.layerBytes[il]} != the layer's ${tensors.length} tensors (${all} bytes)`)
        if (il >= ((d.hparams as { nLayerDenseLead?: number }).nLayerDenseLead ?? 0)) {
          // three (n_embd, n_ff_exp, n_expert) tensors of 8 experts: most of a tiny MoE layer's bytes
          assert.ok(experts > 0.6 * all, `${d.arch.name} layer ${il}: experts ${experts} of ${all} bytes`)
          for (const t of tensors.filter((x) => x.name.endsWith('_exps.weight'))) assert.equal(t.ne[2], 8, `${t.name} is 3-D with 8 experts`)
        }
      }
      const shard = await loadShard({ modelPath: path, range: { start: 1, end: 2 }, threads: 1 })
      try {
        // ggml buffers (CPU_REPACK may pad) hold at least the file bytes of the layer
        assert.ok(shard.weightBytes >= meta.layerBytes[1]!, `loaded ${shard.weightBytes} < layer bytes ${meta.layerBytes[1]}`)
      } finally {
        await shard.dispose()
      }
    }
  })

  it('the speed probe times a real MoE layer: 16 of 16 experts per token take clearly longer than 1 of 16', async () => {
    const shape = (used: number): Parameters<typeof generatedModel>[1] => ({ arch: 'qwen3moe', layers: 3, embd: 512, heads: 8, kvHeads: 2, archOptions: { experts: 16, experts_used: used, expert_ff: 1024 } })
    const one = generatedModel('q8_0', shape(1))
    const all = generatedModel('q8_0', shape(16))
    const probe = async (p: string): Promise<number> => (await probeLayerSpeed(ggmlShardEngine, { modelPath: p, threads: 1, flashAttention: true, steps: 16 })).msPerLayer
    // interleaved, best of 2 each: the machine is shared
    const t1 = Math.min(await probe(one), await probe(one))
    const t16 = Math.min(await probe(all), await probe(all))
    console.log(`# probe: 1 of 16 experts ${t1.toFixed(3)} ms/layer, 16 of 16 ${t16.toFixed(3)} ms/layer (${(t16 / t1).toFixed(1)}×)`)
    // 16 × the expert bytes per token (25 MB vs 1.6 MB of q8_0): the probe must see it
    assert.ok(t16 > 2.5 * t1, `probe ${t16} ms (16 experts) vs ${t1} ms (1 expert): the probe does not run the active experts`)
  })
})
