/**
 * Broken mixture-of-experts files raise typed errors before any native call (llama.cpp would GGML_ASSERT on
 * them), and the process survives: a good MoE shard still loads and computes afterwards.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { loadShard, readModelMetadata } from '../../src/engine/index.js'
import { InvalidExpertConfigError, InvalidGgufError } from '../../src/shared/errors/engine-errors.js'
import { generatedModel } from './helpers/generated-models.js'

const MODEL = generatedModel('q8_0', { arch: 'qwen3moe', layers: 2, archOptions: { experts: 4, experts_used: 2, expert_ff: 128 } })
const original = readFileSync(MODEL)
const dir = mkdtempSync(join(tmpdir(), 'exo-moe-bad-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

/** Offset of the u32 value of metadata key `key` (length-prefixed string, then a 4-byte value type). */
function u32Value (buf: Buffer, key: string): number {
  const needle = Buffer.concat([Buffer.alloc(8), Buffer.from(key)])
  needle.writeBigUInt64LE(BigInt(key.length))
  const i = buf.indexOf(needle)
  assert.ok(i > 0, `${key} not found`)
  assert.equal(buf.readUInt32LE(i + needle.length), 4, `${key} is a u32`)
  return i + needle.length + 4
}

function variant (name: string, edit: (b: Buffer) => void): string {
  const b = Buffer.from(original)
  edit(b)
  const p = join(dir, name)
  writeFileSync(p, b)
  return p
}

describe('MoE files with bad expert metadata', () => {
  it('expert_used_count > expert_count, or 0, is InvalidExpertConfigError from the header and from loadShard', async () => {
    for (const [name, used] of [['too-many.gguf', 5], ['zero.gguf', 0]] as const) {
      const p = variant(name, (b) => b.writeUInt32LE(used, u32Value(b, 'qwen3moe.expert_used_count')))
      assert.throws(() => readModelMetadata(p), (e: unknown) => e instanceof InvalidExpertConfigError && /expert_used_count/.test(e.message))
      await assert.rejects(loadShard({ modelPath: p, range: { start: 0, end: 1 }, threads: 1 }), InvalidExpertConfigError)
    }
  })

  it('experts that do not match expert_count are InvalidGgufError naming the tensor', () => {
    const p = variant('count.gguf', (b) => b.writeUInt32LE(8, u32Value(b, 'qwen3moe.expert_count')))
    assert.throws(() => readModelMetadata(p), (e: unknown) => e instanceof InvalidGgufError && /ffn_gate_inp\.weight has shape/.test(e.message))
  })

  it('the process survives: a good MoE shard loads and computes', async () => {
    const shard = await loadShard({ modelPath: MODEL, range: { start: 0, end: 2 }, threads: 1 })
    try {
      const s = shard.createSession({ contextSize: 64 })
      const out = await s.forward({ kind: 'tokens', tokens: Int32Array.of(1, 450, 4996) })
      assert.equal(out.kind, 'logits')
      if (out.kind === 'logits') assert.ok(out.logits.every(Number.isFinite))
      s.dispose()
    } finally {
      await shard.dispose()
    }
  })
})
