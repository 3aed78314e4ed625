/**
 * Child process of engine-vulkan.test.ts (a heap corruption aborts the whole process, so it runs on its own):
 * stories260k all offloaded, a session prefills 40 tokens and decodes 24, is disposed, then a new session prefills
 * 300 tokens. Prints the last logits' argmax and exits 0.
 */
import { loadShard, readModelMetadata, selectComputeBackend } from '../../../src/engine/index.js'

process.env.GGML_VK_VISIBLE_DEVICES ??= '0'
selectComputeBackend('vulkan')
const modelPath = 'models/stories260k-f32.gguf'
const meta = readModelMetadata(modelPath)
const shard = await loadShard({ modelPath, range: { start: 0, end: meta.nLayers }, threads: 1, flashAttention: false, gpuLayers: meta.nLayers })
const prompt = (n: number, seed: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i === 0 ? 1 : 2 + (((i - 1) * 7919 + seed * 104729) % (meta.nVocab - 2)))
const argmax = (a: Float32Array): number => a.reduce((b, x, i) => x > a[b]! ? i : b, 0)
const logits = (o: unknown): Float32Array => (o as { logits: Float32Array }).logits
const a = shard.createSession({ contextSize: 512 })
let l = logits(await a.forward({ kind: 'tokens', tokens: prompt(40, 1) }))
for (let t = 0; t < 24; t++) l = logits(await a.forward({ kind: 'tokens', tokens: Int32Array.of(argmax(l)) }))
a.dispose()
const b = shard.createSession({ contextSize: 512 })
const out = logits(await b.forward({ kind: 'tokens', tokens: prompt(300, 2) }))
b.dispose()
await shard.dispose()
console.log(`argmax ${argmax(out)}`)
