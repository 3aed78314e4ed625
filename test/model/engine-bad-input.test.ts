/**
 * Every kind of bad input to the engine raises its typed error before any native call, and the process
 * survives: the last test still loads a shard and computes logits.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadShard, readModelMetadata } from '../../src/engine/index.js'
import { DisposedError } from '../../src/shared/errors/exo-error.js'
import {
  ContextOverflowError, InvalidEngineOptionError, InvalidForwardInputError, InvalidLayerRangeError, NotGgufError,
  TruncatedGgufError, UnknownArchitectureError, UnsupportedTensorTypeError
} from '../../src/shared/errors/engine-errors.js'
import type { LoadedShard } from '../../src/engine/index.js'

const MODEL = 'models/stories260k-f32.gguf' // 5 layers, n_embd 64, vocab 512
const dir = mkdtempSync(join(tmpdir(), 'exo-engine-bad-'))
const original = readFileSync(MODEL)

/** Offset of the value that follows the length-prefixed string `s` in the GGUF header. */
function afterString (buf: Buffer, s: string): number {
  const needle = Buffer.concat([Buffer.alloc(8), Buffer.from(s)])
  needle.writeBigUInt64LE(BigInt(s.length))
  const i = buf.indexOf(needle)
  assert.ok(i > 0, `${s} not found`)
  return i + needle.length
}

function variant (name: string, edit: (b: Buffer) => Buffer): string {
  const p = join(dir, name)
  writeFileSync(p, edit(Buffer.from(original)))
  return p
}

describe('engine rejects bad input with typed errors', () => {
  let first: LoadedShard
  let middle: LoadedShard
  before(async () => {
    first = await loadShard({ modelPath: MODEL, range: { start: 0, end: 2 }, threads: 1 })
    middle = await loadShard({ modelPath: MODEL, range: { start: 2, end: 5 }, threads: 1 })
  })
  after(async () => {
    await first.dispose()
    await middle.dispose()
    rmSync(dir, { recursive: true, force: true })
  })

  it('not a GGUF / missing file', async () => {
    const p = join(dir, 'noise.gguf')
    writeFileSync(p, Buffer.from('this is not a gguf file at all'))
    await assert.rejects(loadShard({ modelPath: p, range: { start: 0, end: 1 }, threads: 1 }), NotGgufError)
    assert.throws(() => readModelMetadata(join(dir, 'missing.gguf')), NotGgufError)
  })

  it('truncated GGUF (header and tensor data)', async () => {
    const header = variant('trunc-header.gguf', (b) => b.subarray(0, 100))
    const data = variant('trunc-data.gguf', (b) => b.subarray(0, b.length - 1000))
    assert.throws(() => readModelMetadata(header), TruncatedGgufError)
    await assert.rejects(loadShard({ modelPath: data, range: { start: 0, end: 5 }, threads: 1 }), (err: unknown) =>
      err instanceof TruncatedGgufError && /output|blk|token_embd/.test(err.message))
  })

  it('unknown architecture', async () => {
    const p = variant('arch.gguf', (b) => { const o = afterString(b, 'general.architecture') + 4 + 8; b.write('zzzzz', o); return b })
    await assert.rejects(loadShard({ modelPath: p, range: { start: 0, end: 1 }, threads: 1 }), (err: unknown) =>
      err instanceof UnknownArchitectureError && err.architecture === 'zzzzz')
  })

  it('unsupported tensor type', async () => {
    // blk.0.attn_norm.weight: [64] f32 → i32 (same byte size, no kernels for a weight), q8_1 (a ggml type with
    // no vec_dot: only a matmul operand), 4 (Q4_2, removed from ggml), 99 (past GGML_TYPE_COUNT)
    for (const typeId of [26, 9, 4, 99]) {
      const p = variant(`type-${typeId}.gguf`, (b) => { const o = afterString(b, 'blk.0.attn_norm.weight'); b.writeUInt32LE(typeId, o + 4 + 8); return b })
      const typed = (err: unknown): boolean => err instanceof UnsupportedTensorTypeError && err.tensorName === 'blk.0.attn_norm.weight' && err.typeId === typeId
      assert.throws(() => readModelMetadata(p), typed, `type ${typeId}`)
      await assert.rejects(loadShard({ modelPath: p, range: { start: 0, end: 1 }, threads: 1 }), typed, `type ${typeId}`)
    }
  })

  it('invalid layer range and options', async () => {
    for (const range of [{ start: 3, end: 2 }, { start: 0, end: 6 }, { start: -1, end: 2 }, { start: 1.5, end: 3 }, { start: 2, end: 2 }]) {
      await assert.rejects(loadShard({ modelPath: MODEL, range, threads: 1 }), InvalidLayerRangeError, JSON.stringify(range))
    }
    await assert.rejects(loadShard({ modelPath: MODEL, range: { start: 0, end: 1 }, threads: 0 }), InvalidEngineOptionError)
    assert.throws(() => first.createSession({ contextSize: 0 }), InvalidEngineOptionError)
  })

  it('bad forward inputs', async () => {
    const s = first.createSession({ contextSize: 16 })
    const m = middle.createSession({ contextSize: 16 })
    try {
      await assert.rejects(s.forward({ kind: 'tokens', tokens: Int32Array.of(1, 512) }), InvalidForwardInputError)
      await assert.rejects(s.forward({ kind: 'tokens', tokens: Int32Array.of(-1) }), InvalidForwardInputError)
      await assert.rejects(s.forward({ kind: 'tokens', tokens: new Int32Array(0) }), InvalidForwardInputError)
      await assert.rejects(s.forward({ kind: 'hidden', hidden: new Float32Array(64), nTokens: 1 }), InvalidForwardInputError)
      await assert.rejects(m.forward({ kind: 'tokens', tokens: Int32Array.of(1) }), InvalidForwardInputError)
      await assert.rejects(m.forward({ kind: 'hidden', hidden: new Float32Array(63), nTokens: 1 }), InvalidForwardInputError)
      await assert.rejects(m.forward({ kind: 'hidden', hidden: new Float32Array(128), nTokens: 1 }), InvalidForwardInputError)
      await assert.rejects(s.forward({ kind: 'tokens', tokens: new Int32Array(17).fill(1) }), ContextOverflowError)
      const out = await s.forward({ kind: 'tokens', tokens: new Int32Array(10).fill(1) })
      assert.equal(out.kind, 'hidden')
      assert.equal(s.position, 10)
      await assert.rejects(s.forward({ kind: 'tokens', tokens: new Int32Array(7).fill(1) }), ContextOverflowError)
      assert.equal(s.position, 10, 'a rejected forward leaves the position unchanged')
      assert.throws(() => s.truncate(11), InvalidForwardInputError)
      s.truncate(4)
      assert.equal(s.position, 4)
      const ac = new AbortController()
      ac.abort()
      await assert.rejects(s.forward({ kind: 'tokens', tokens: Int32Array.of(1) }, { signal: ac.signal }), { code: 'ABORTED' })
    } finally {
      s.dispose()
      m.dispose()
    }
    await assert.rejects(s.forward({ kind: 'tokens', tokens: Int32Array.of(1) }), DisposedError)
  })

  it('abort during a multi-chunk prefill rejects with AbortedError and leaves the position unchanged', async () => {
    const whole = await loadShard({ modelPath: MODEL, range: { start: 0, end: 5 }, threads: 1 })
    const s = whole.createSession({ contextSize: 2048 })
    try {
      await s.forward({ kind: 'tokens', tokens: Int32Array.of(1, 2, 3) })
      const ac = new AbortController()
      setTimeout(() => ac.abort(), 1)
      const prompt = new Int32Array(1500).map((_, i) => 1 + (i % 500))
      await assert.rejects(s.forward({ kind: 'tokens', tokens: prompt }, { signal: ac.signal }), { code: 'ABORTED' })
      assert.equal(s.position, 3)
      const out = await s.forward({ kind: 'tokens', tokens: Int32Array.of(4) })
      assert.equal(out.kind, 'logits')
      assert.equal(s.position, 4)
    } finally {
      s.dispose()
      await whole.dispose()
    }
  })

  it('the process survives and still computes correct-shaped logits', async () => {
    const whole = await loadShard({ modelPath: MODEL, range: { start: 0, end: 5 }, threads: 1 })
    const s = whole.createSession({ contextSize: 32 })
    const out = await s.forward({ kind: 'tokens', tokens: Int32Array.of(1, 400, 300) }, { logits: 'all' })
    assert.equal(out.kind, 'logits')
    if (out.kind === 'logits') {
      assert.equal(out.nRows, 3)
      assert.equal(out.logits.length, 3 * 512)
      assert.ok(out.logits.every(Number.isFinite))
    }
    s.dispose()
    await whole.dispose()
    await assert.rejects(async () => { whole.createSession({ contextSize: 8 }) }, DisposedError)
  })
})
