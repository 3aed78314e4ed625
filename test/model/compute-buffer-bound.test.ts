/**
 * The model card's compute-buffer bound (src/node/pipeline/model-card.ts) against the engine's real
 * ggml buffers: a stage prefilled to the end of its context (the worst graph: full-width mask and
 * scores) never allocates more than the planner budgets for it — first, middle and last stages, with
 * flash attention on and off, on the bundled model, a generated GQA one, a generated deepseek2 (MLA + MoE) and a
 * generated qwen3moe routing every token through all its experts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { join } from 'node:path'
import { loadShard, readModelMetadata } from '../../src/engine/index.js'
import type { ShardSessionImpl } from '../../src/engine/shard-session.js'
import { computeBufferBytes } from '../../src/node/pipeline/model-card.js'
import { generatedModel } from './helpers/generated-models.js'

const ROOT = new URL('../../', import.meta.url).pathname

describe('compute buffer bound', () => {
  for (const [name, path, contextSize] of [
    ['stories260k', join(ROOT, 'models', 'stories260k-f32.gguf'), 1024],
    ['generated GQA f16', generatedModel('f16', { layers: 3, embd: 512, heads: 8, kvHeads: 2, ff: 1408 }), 1000],
    // MLA attention temporaries (16 heads × kv_lora_rank 256) and 8 of 16 experts outgrow 3·nFf + 4·nEmbd: the card uses the engine's activationFloatsPerToken
    ['generated deepseek2 f16', generatedModel('f16', { arch: 'deepseek2', kvHeads: 1, layers: 3, heads: 16, archOptions: { qLora: 64, kvLora: 256, denseLead: 1, experts: 16, expertsUsed: 8, gating: 'sigmoid', probsBias: true } }), 1000],
    // 16 of 16 experts per token: the MoE temporaries (16 × up/gate/act/down) outgrow 3·nFf + 4·nEmbd 14-fold
    ['generated qwen3moe 16 of 16 experts f16', generatedModel('f16', { arch: 'qwen3moe', layers: 3, archOptions: { experts: 16, experts_used: 16, expert_ff: 512 } }), 1000]
  ] as const) {
    it(`${name}: every stage's real buffer at the end of a ${contextSize}-cell context is within the card's bound`, async () => {
      const meta = readModelMetadata(path)
      const L = meta.nLayers
      for (const flashAttention of [true, false]) {
        for (const range of [{ start: 0, end: 1 }, { start: 1, end: L - 1 }, { start: L - 1, end: L }, { start: 0, end: L }]) {
          const bound = computeBufferBytes(meta, contextSize, flashAttention, range.end - range.start)
          const shard = await loadShard({ modelPath: path, range, threads: 1, flashAttention })
          try {
            const s = shard.createSession({ contextSize }) as ShardSessionImpl
            const n = contextSize - 1
            // (n) tokens or (n, nEmbd) f32: prefilled in 512-token graphs, the last one spanning every cell
            await s.forward(range.start === 0 ? { kind: 'tokens', tokens: new Int32Array(n).fill(1) } : { kind: 'hidden', hidden: new Float32Array(n * meta.nEmbd), nTokens: n })
            const used = s.allocator.bufferBytes().cpu
            s.dispose()
            assert.ok(used > 0)
            assert.ok(used <= bound, `flash ${flashAttention}, layers [${range.start}, ${range.end}): ${used} bytes > bound ${bound}`)
            process.stderr.write(`# ${name} flash=${flashAttention} [${range.start},${range.end}): ${(used / 2 ** 20).toFixed(2)} MiB of a ${(bound / 2 ** 20).toFixed(2)} MiB bound\n`)
          } finally {
            await shard.dispose()
          }
        }
      }
    })
  }
})
