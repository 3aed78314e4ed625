/**
 * A long prefill (1100 tokens = 3 chunks of ≤ 512) is exact vs node-llama-cpp (which evaluates in batches of
 * 512 too), and compute runs off the event loop: a 5 ms timer keeps ticking while it runs.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadShard } from '../../src/engine/index.js'
import { generatedModel } from './helpers/generated-models.js'
import { maxAbsDiff, referenceLogits } from './helpers/reference.js'

describe('long prefill', () => {
  it('is exact across chunks and does not block the event loop', async () => {
    const path = generatedModel('f16', { layers: 4, embd: 512, heads: 8, kvHeads: 4, ff: 1536 })
    const prompt: number[] = [1]
    for (let i = 1; i < 1100; i++) prompt.push(100 + ((i * 7919) % 30000))
    const ref = await referenceLogits(path, prompt, 0, false, 2048)

    const shard = await loadShard({ modelPath: path, range: { start: 0, end: 4 }, threads: 1 })
    const s = shard.createSession({ contextSize: 2048 })
    let ticks = 0
    let last = performance.now()
    let maxGap = 0
    const timer = setInterval(() => { const now = performance.now(); maxGap = Math.max(maxGap, now - last); last = now; ticks++ }, 5)
    const t0 = performance.now()
    const out = await s.forward({ kind: 'tokens', tokens: Int32Array.from(prompt) })
    const elapsed = performance.now() - t0
    clearInterval(timer)
    maxGap = Math.max(maxGap, performance.now() - last)
    try {
      assert.equal(out.kind, 'logits')
      if (out.kind !== 'logits') return
      const diff = maxAbsDiff(out.logits, ref.logits[0]!)
      console.log(`# prefill of ${prompt.length} tokens: ${elapsed.toFixed(0)} ms, max |diff| = ${diff}; timer ticked ${ticks}×, longest gap ${maxGap.toFixed(1)} ms`)
      assert.equal(diff, 0)
      assert.equal(s.position, prompt.length)
      // the loop is free while ggml computes: ticks keep coming and no gap approaches the compute time
      assert.ok(elapsed > 100, `prefill took only ${elapsed} ms: too short to show anything`)
      assert.ok(ticks >= elapsed / 5 / 4, `only ${ticks} ticks in ${elapsed.toFixed(0)} ms`)
      assert.ok(maxGap < Math.max(100, elapsed / 4), `event loop blocked for ${maxGap.toFixed(0)} ms`)
    } finally {
      s.dispose()
      await shard.dispose()
    }
  })
})
