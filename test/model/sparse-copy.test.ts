/**
 * What peer fetch relies on (protocols/weights.md "Where it writes"): a sparse file of the model's full
 * size that holds only the GGUF header and the exact bytes of one shard's tensors (every other byte a
 * hole) loads that shard, and the shards of three such copies give node-llama-cpp's logits on the whole
 * file bit for bit; the tokenizer and the grammar (node-llama-cpp, vocabulary only) work on a copy that
 * holds the header alone; and the copy's allocated blocks are about its bytes, not the file's.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, ftruncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { shardFileRanges } from '../../src/engine/index.js'
import { readGguf } from '../../src/engine/gguf/gguf-reader.js'
import { Tokenizer } from '../../src/engine/tokenizer.js'
import { createGrammarConstraint } from '../../src/engine/grammar/grammar-constraint.js'
import { generatedModel } from './helpers/generated-models.js'
import { Pipeline, compareWithReference, referenceLogits, splitRanges } from './helpers/reference.js'

const MODEL = generatedModel('q8_0', { layers: 6, embd: 512, heads: 8, kvHeads: 8, ff: 1408, seed: 31 })
const file = readFileSync(MODEL)
const headerBytes = readGguf(MODEL).dataOffset
const dir = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'sparse-copy-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

/** A sparse copy holding [0, headerBytes) and the given ranges; returns its path and the bytes written. */
function sparseCopy (name: string, ranges: Array<{ offset: number, bytes: number }>): { path: string, written: number } {
  const path = join(dir, `${name}.gguf`)
  const fd = openSync(path, 'w')
  ftruncateSync(fd, file.byteLength)
  let written = 0
  for (const r of [{ offset: 0, bytes: headerBytes }, ...ranges]) written += writeSync(fd, file, r.offset, r.bytes, r.offset)
  closeSync(fd)
  return { path, written }
}

function allocatedBytes (path: string): number {
  const [blocks, size] = execFileSync('stat', ['-c', '%b %B', path]).toString().trim().split(' ').map(Number)
  return blocks! * size!
}

describe('sparse partial copies', () => {
  it('three copies, each with the header + its shard\'s tensors only: logits == node-llama-cpp on the whole file (prefill + 8 decode steps, max |diff| 0)', async () => {
    const ranges = splitRanges(6, 3)
    const copies = ranges.map((range, i) => ({ range, ...sparseCopy(`shard${i}`, shardFileRanges(MODEL, range)) }))
    for (const c of copies) {
      const alloc = allocatedBytes(c.path)
      // blocks are 4 KiB: at most one extra block per written range edge
      assert.ok(alloc <= c.written + 64 * 4096 && alloc >= c.written - 4096, `${c.path}: ${alloc} bytes allocated for ${c.written} written`)
      assert.ok(alloc < file.byteLength * 0.6)
    }
    const ref = await referenceLogits(MODEL, 'The quick brown fox', 8, true)
    const p = await Pipeline.loadEach(copies.map((c) => ({ modelPath: c.path, range: c.range })), true)
    try {
      assert.equal(await compareWithReference(p, ref), 0)
    } finally { await p.dispose() }
  })

  it('tokenizer and grammar (vocabulary-only loads) on a copy that holds the header alone', async () => {
    const { path } = sparseCopy('header-only', [])
    assert.ok(allocatedBytes(path) <= headerBytes + 8192)
    const [full, sparse] = await Promise.all([Tokenizer.load(MODEL), Tokenizer.load(path)])
    try {
      const text = 'Once upon a time, 42 foxes jumped.'
      assert.deepEqual(sparse.tokenizeCompletion(text), full.tokenizeCompletion(text))
      const tokens = full.tokenizeCompletion(text)
      assert.equal(sparse.detokenize(tokens), full.detokenize(tokens))
    } finally { await Promise.all([full.dispose(), sparse.dispose()]) }
    // the grammar allows the same tokens over a vocabulary read from the header alone
    const signal = AbortSignal.timeout(30_000)
    const [gFull, gSparse] = await Promise.all([createGrammarConstraint(MODEL, { kind: 'json' }, { signal }), createGrammarConstraint(path, { kind: 'json' }, { signal })])
    try {
      const n = readGguf(MODEL).tensors.get('token_embd.weight')!.ne[1]!
      const a = new Float32Array(n).fill(1)
      const b = new Float32Array(n).fill(1)
      gFull.mask(a)
      gSparse.mask(b)
      assert.deepEqual(b, a)
      assert.ok(a.some((x) => x === -Infinity) && a.some((x) => x === 1), 'the JSON grammar allows some tokens and not others')
    } finally { gFull.dispose(); gSparse.dispose() }
  })
})
