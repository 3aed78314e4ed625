/**
 * Split GGUF models on real ggml: scripts/split-gguf.ts writes part headers byte for byte as llama.cpp's
 * gguf-split does (same gguf calls through libggml); a generated model written as 3 parts gives logits
 * bit-identical to node-llama-cpp on the single file and on the parts (prompt + 30 greedy steps, whole and
 * in 2 shards); a shard reads weights only from the parts holding its tensors; broken splits are typed errors.
 */
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { splitGguf } from '../../scripts/split-gguf.js'
import { loadShard, shardWeightFiles } from '../../src/engine/load-shard.js'
import { describeModel } from '../../src/engine/model-description.js'
import { readGguf } from '../../src/engine/gguf/gguf-reader.js'
import { SplitPartMissingError } from '../../src/shared/errors/engine-errors.js'
import { generatedModel } from './helpers/generated-models.js'
import { writeGgufSplitHeaders } from './helpers/gguf-split-reference.js'
import { Pipeline, compareWithReference, maxAbsDiff, referenceLogits } from './helpers/reference.js'
import type { Reference } from './helpers/reference.js'

const PROMPT = 'The quick brown fox jumps over the lazy dog because'
const STEPS = 30
const dir = mkdtempSync(join(tmpdir(), 'exo-split-model-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

describe('split GGUF on ggml', () => {
  let single: string
  let parts: string[]
  let refSingle: Reference
  before(async () => {
    // the 512-token stories260k vocabulary keeps the files small (the writer is byte-level either way)
    single = generatedModel('q8_0', { vocabFrom: 'models/stories260k-f32.gguf' })
    parts = splitGguf({ input: single, outPrefix: join(dir, 'm'), parts: 3 })
    refSingle = await referenceLogits(single, PROMPT, STEPS, false)
  })

  it('part headers are byte for byte what gguf-split writes (its gguf calls through libggml); data as in the single file', () => {
    for (const opts of [{ parts: 3 }, { maxTensors: 5 }, { maxTensors: 8, noTensorFirstSplit: true }]) {
      const ours = splitGguf({ input: single, outPrefix: join(dir, 'hdr'), ...opts })
      const groups = ours.map((p) => [...readGguf(p).tensors.values()])
      const refPaths = ours.map((_, i) => join(dir, `ref-${i}.gguf`))
      writeGgufSplitHeaders(single, groups, refPaths)
      const whole = readGguf(single)
      ours.forEach((p, i) => {
        const f = readGguf(p)
        const ref = readFileSync(refPaths[i]!)
        const got = readFileSync(p)
        assert.equal(f.dataOffset, ref.length, `${JSON.stringify(opts)} part ${i + 1}: data offset`)
        assert.ok(got.subarray(0, ref.length).equals(ref), `${JSON.stringify(opts)} part ${i + 1}: header bytes differ from gguf-split's`)
        // data: each tensor's bytes, zero-padded to 32
        let end = ref.length
        for (const t of f.tensors.values()) {
          const w = whole.tensors.get(t.name)!
          assert.ok(got.subarray(t.fileOffset, t.fileOffset + t.bytes).equals(readFileSync(single).subarray(w.fileOffset, w.fileOffset + w.bytes)), t.name)
          end = t.fileOffset + Math.ceil(t.bytes / 32) * 32
        }
        assert.equal(got.length, end, 'file ends at the padded end of its last tensor')
      })
    }
  })

  it('3 parts: logits == node-llama-cpp on the single file and on the parts, prompt + 30 greedy steps, whole and 2 shards', async () => {
    const refSplit = await referenceLogits(parts[0]!, PROMPT, STEPS, false)
    for (let s = 0; s < refSingle.logits.length; s++) {
      assert.deepEqual(refSplit.steps[s], refSingle.steps[s])
      assert.equal(maxAbsDiff(refSplit.logits[s]!, refSingle.logits[s]!), 0, 'node-llama-cpp: split parts vs single file')
    }
    for (const ranges of [[{ start: 0, end: 2 }], [{ start: 0, end: 1 }, { start: 1, end: 2 }]]) {
      const p = await Pipeline.load(parts[0]!, ranges, false)
      try {
        const diff = await compareWithReference(p, refSingle)
        console.log(`# q8_0 split in 3 parts, ${ranges.length} shard(s): max |diff| = ${diff} over ${refSingle.steps.length} steps`)
        assert.equal(diff, 0)
        assert.equal(p.shards[0]!.metadata.fileBytes, parts.reduce((a, f) => a + readFileSync(f).length, 0))
      } finally {
        await p.dispose()
      }
    }
  })

  it('a metadata-only first part (gguf-split --no-tensor-first-split, --split-max-tensors 8): same logits in node-llama-cpp and the engine', async () => {
    const nt = splitGguf({ input: single, outPrefix: join(dir, 'nt'), maxTensors: 8, noTensorFirstSplit: true })
    assert.equal(readGguf(nt[0]!).tensors.size, 0)
    const ref = await referenceLogits(nt[0]!, PROMPT, 2, false)
    for (let s = 0; s < ref.logits.length; s++) assert.equal(maxAbsDiff(ref.logits[s]!, refSingle.logits[s]!), 0)
    const p = await Pipeline.load(nt[0]!, [{ start: 0, end: 1 }, { start: 1, end: 2 }], false)
    try {
      assert.equal(await compareWithReference(p, refSingle), 0)
    } finally {
      await p.dispose()
    }
  })

  it('a shard reads weights only from the parts holding its tensors (an unneeded part may hold garbage)', async () => {
    const d = describeModel(parts[0]!)
    const first = shardWeightFiles(d, { start: 0, end: 1 })
    const last = shardWeightFiles(d, { start: 1, end: 2 })
    assert.ok(!first.includes(parts[2]!), `shard [0, 1) needs ${first.join(', ')}`)
    assert.ok(last.includes(parts[2]!))
    // a copy whose third part has every data byte overwritten (header intact, so it still validates)
    const bad = splitGguf({ input: single, outPrefix: join(dir, 'bad'), parts: 3 })
    const p3 = readGguf(bad[2]!)
    const fd = openSync(bad[2]!, 'r+')
    try { writeSync(fd, Buffer.alloc(p3.fileBytes - p3.dataOffset, 0xff), 0, p3.fileBytes - p3.dataOffset, p3.dataOffset) } finally { closeSync(fd) }
    const s0 = await loadShard({ modelPath: bad[0]!, range: { start: 0, end: 1 }, threads: 1, flashAttention: false })
    const s1Bad = await loadShard({ modelPath: bad[0]!, range: { start: 1, end: 2 }, threads: 1, flashAttention: false })
    const s1 = await loadShard({ modelPath: parts[0]!, range: { start: 1, end: 2 }, threads: 1, flashAttention: false })
    try {
      assert.deepEqual([...s0.weightFiles!].sort(), shardWeightFiles(describeModel(bad[0]!), { start: 0, end: 1 }).sort())
      assert.ok(!s0.weightFiles!.includes(bad[2]!))
      const run = async (a: typeof s0, b: typeof s0): Promise<number> => {
        const sa = a.createSession({ contextSize: 512 })
        const sb = b.createSession({ contextSize: 512 })
        try {
          let worst = 0
          for (let s = 0; s < refSingle.steps.length; s++) {
            const h = await sa.forward({ kind: 'tokens', tokens: Int32Array.from(refSingle.steps[s]!) })
            if (h.kind !== 'hidden') throw new Error('expected hidden')
            const out = await sb.forward({ kind: 'hidden', hidden: h.hidden, nTokens: h.nTokens })
            if (out.kind !== 'logits') throw new Error('expected logits')
            worst = Math.max(worst, maxAbsDiff(out.logits, refSingle.logits[s]!))
          }
          return worst
        } finally { sa.dispose(); sb.dispose() }
      }
      assert.equal(await run(s0, s1), 0, 'first shard from the copy with a garbage third part')
      assert.notEqual(await run(s0, s1Bad), 0, 'the garbage does reach a shard that reads the third part')
    } finally {
      for (const s of [s0, s1Bad, s1]) await s.dispose()
    }
  })

  it('loadShard on a split with a missing part: typed error before any native call, and the process goes on', async () => {
    const broken = splitGguf({ input: single, outPrefix: join(dir, 'gone'), parts: 3 })
    rmSync(broken[2]!)
    await assert.rejects(loadShard({ modelPath: broken[0]!, range: { start: 0, end: 1 }, threads: 1, flashAttention: false }),
      (e: unknown) => e instanceof SplitPartMissingError && e.partPath === broken[2])
    copyFileSync(parts[2]!, broken[2]!)
    const s = await loadShard({ modelPath: broken[0]!, range: { start: 0, end: 2 }, threads: 1, flashAttention: false })
    await s.dispose()
  })
})
