// Property tests of the membership announcement validator and the GGUF header reader: arbitrary and
// mutated inputs give a valid result or the typed error (InvalidAnnouncementError; NotGguf / TruncatedGguf /
// InvalidGguf), never a crash; what is accepted is usable (re-encodes, applies to a view, offsets in the file).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { decodeMembershipMessage, encodeMembershipMessage } from '../../../src/mesh/membership/announcement.js'
import { applyMessage, emptyView } from '../../../src/mesh/membership/view.js'
import { canonicalView } from '../../../src/mesh/membership/canonical-view.js'
import { InvalidAnnouncementError } from '../../../src/shared/errors/mesh-errors.js'
import { readGguf } from '../../../src/engine/gguf/gguf-reader.js'
import { InvalidGgufError, NotGgufError, TruncatedGgufError } from '../../../src/shared/errors/engine-errors.js'
import { makeAnnouncement } from '../mesh/fixtures.js'
import { FUZZ, mutate, typedOrValid } from './typed-or-valid.js'
import type { Mutation } from './typed-or-valid.js'

const PEER = '12D3KooWFuzzPeer'

function checkMembership (data: Uint8Array, from: string | undefined): void {
  const msg = typedOrValid(() => decodeMembershipMessage({ data, from }), [InvalidAnnouncementError])
  if (msg === undefined) return
  assert.equal(msg.peerId, from)
  assert.deepEqual(decodeMembershipMessage({ data: encodeMembershipMessage(msg), from }), msg, 'an accepted message re-encodes to itself')
  const { state } = applyMessage(emptyView('12D3KooWself'), msg, 1000)
  canonicalView(state) // what the planner reads: never throws on an accepted message
}

const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, -1, 1e308, 2 ** 53 + 2, 1.5, '', 'x'.repeat(300), [], {}, Number.MAX_SAFE_INTEGER)
)

const announcementEdits = fc.array(fc.record({
  path: fc.array(fc.constantFrom('capabilities', 'models', 'shards', 'links', 'pipeline', 'plan', 'stages', '0', '1', 'peerId', 'epoch', 'seq', 'start', 'end', 'rttMs', 'rttClassMs', 'nLayers', 'id', 'kind', 'v', 'cpuCores', 'memoryBudgetBytes', 'name'), { minLength: 1, maxLength: 4 }),
  value: hostile
}), { minLength: 1, maxLength: 4 })

const full = makeAnnouncement(PEER, {
  models: [{ id: 'm', sizeBytes: 10 }],
  shards: [{ model: 'm', start: 0, end: 4, ready: true, planId: 'a'.repeat(64) }],
  links: [{ peerId: '12D3KooWother', rttMs: 0.8, rttClassMs: 1, bandwidthBytesPerSec: 1e8 }],
  pipeline: { model: 'm', msPerLayer: 1, plan: { kind: 'plan', id: 'a'.repeat(64), modelId: 'm', nLayers: 4, stages: [{ peerId: PEER, name: 'n', start: 0, end: 2, computeMs: 1, memoryBytes: 1 }, { peerId: '12D3KooWother', name: 'o', start: 2, end: 4, computeMs: 1, memoryBytes: 1 }], predictedMsPerToken: 2, ringRttMs: 1 } }
})

test('membership: arbitrary bytes and signers → a message or InvalidAnnouncementError', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), fc.option(fc.constantFrom(PEER, ''), { nil: undefined }), (bytes, from) => {
    checkMembership(bytes, from)
  }), FUZZ)
})

test('membership: announcements with hostile fields → a usable message or InvalidAnnouncementError', () => {
  fc.assert(fc.property(announcementEdits, fc.boolean(), (edits, huge) => {
    const ann = structuredClone(full) as unknown as Record<string, unknown>
    for (const e of edits) {
      let node: unknown = ann
      for (const k of e.path.slice(0, -1)) node = typeof node === 'object' && node !== null && Object.hasOwn(node, k) ? (node as Record<string, unknown>)[k] : undefined
      if (typeof node === 'object' && node !== null) Object.defineProperty(node, e.path.at(-1)!, { value: structuredClone(e.value), enumerable: true, writable: true, configurable: true })
    }
    if (huge) (ann.models as unknown[] | undefined)?.push?.(...Array.from({ length: 300 }, (_, i) => ({ id: `m${i}`, sizeBytes: i })))
    checkMembership(new TextEncoder().encode(JSON.stringify(ann)), PEER)
  }), FUZZ)
})

// ---- GGUF -------------------------------------------------------------------------------------

/** A GGUF v3 file built byte by byte: header, KV pairs, tensor infos, padding to the alignment, data. */
function gguf (o: { nTensorsOverride?: bigint, nKvOverride?: bigint, alignment?: number, tensors: Array<{ name: string, ne: number[], type: number, offset: bigint }>, dataBytes: number }): Uint8Array {
  const parts: Buffer[] = []
  const u32 = (v: number): void => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); parts.push(b) }
  const u64 = (v: bigint): void => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt.asUintN(64, v)); parts.push(b) }
  const str = (s: string): void => { const b = Buffer.from(s); u64(BigInt(b.byteLength)); parts.push(b) }
  const kv: Array<[string, () => void]> = [['general.architecture', () => { u32(8); str('llama') }]]
  if (o.alignment !== undefined) kv.push(['general.alignment', () => { u32(4); u32(o.alignment!) }])
  kv.push(['llama.block_count', () => { u32(4); u32(1) }], ['tokenizer.ggml.tokens', () => { u32(9); u32(8); u64(2n); str('a'); str('b') }])
  parts.push(Buffer.from('GGUF'))
  u32(3)
  u64(o.nTensorsOverride ?? BigInt(o.tensors.length))
  u64(o.nKvOverride ?? BigInt(kv.length))
  for (const [k, write] of kv) { str(k); write() }
  for (const t of o.tensors) {
    str(t.name)
    u32(t.ne.length)
    for (const d of t.ne) u64(BigInt(d))
    u32(t.type)
    u64(t.offset)
  }
  const header = Buffer.concat(parts)
  const align = o.alignment ?? 32
  const pad = align > 0 && align < 1 << 16 ? (align - (header.byteLength % align)) % align : 0
  return Buffer.concat([header, Buffer.alloc(pad), Buffer.alloc(o.dataBytes, 0x3c)])
}

const GGUF_ERRORS = [NotGgufError, TruncatedGgufError, InvalidGgufError]

test('GGUF: truncated, absurd counts, offsets past the end, bad alignment, flipped bytes → a header or a typed error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'exo-fuzz-gguf-'))
  try {
    const tensor = fc.record({
      name: fc.oneof(fc.constantFrom('token_embd.weight', 'blk.0.attn_q.weight', 'output_norm.weight'), fc.string({ maxLength: 12 })),
      ne: fc.array(fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(2 ** 32, 2 ** 53 - 1, 32)), { minLength: 0, maxLength: 5 }),
      type: fc.oneof(fc.constantFrom(0, 1, 8, 2), fc.integer({ min: 0, max: 1000 })), // F32, F16, Q8_0, Q4_0, anything
      offset: fc.oneof(fc.constantFrom(0n, 32n, 64n, 3n, 2n ** 40n, 2n ** 63n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 4096n }))
    })
    const file = fc.record({
      nTensorsOverride: fc.option(fc.constantFrom(0n, 1n, 2n ** 20n, 2n ** 40n, 2n ** 64n - 1n), { nil: undefined }),
      nKvOverride: fc.option(fc.constantFrom(0n, 2n, 100n, 2n ** 62n, 2n ** 64n - 1n), { nil: undefined }),
      alignment: fc.option(fc.constantFrom(0, 1, 3, 8, 32, 48, 2 ** 31, 0xffffffff), { nil: undefined }),
      tensors: fc.array(tensor, { maxLength: 3 }),
      dataBytes: fc.integer({ min: 0, max: 4096 })
    })
    const mutation: fc.Arbitrary<Mutation | undefined> = fc.option(fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('flip' as const), at: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), xor: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0xffffffff, 0x7fffffff, 4, 9) })
    ), { nil: undefined })
    let i = 0
    fc.assert(fc.property(file, mutation, (f, m) => {
      let bytes = gguf(f)
      if (m !== undefined) bytes = mutate(bytes, m)
      const path = join(dir, `f${i++ % 4}.gguf`)
      writeFileSync(path, bytes)
      const g = typedOrValid(() => readGguf(path), GGUF_ERRORS)
      if (g === undefined) return
      assert.ok(g.dataOffset <= g.fileBytes || g.tensors.size === 0, 'the data section starts inside the file')
      for (const t of g.tensors.values()) {
        assert.ok(Number.isSafeInteger(t.fileOffset) && t.fileOffset >= g.dataOffset, `${t.name}: offset ${t.fileOffset}`)
        assert.ok(t.fileOffset + t.bytes <= g.fileBytes, `${t.name}: data inside the file`)
        const a: unknown = g.metadata.get('general.alignment')
        const align: number = typeof a === 'number' ? a : 32
        assert.equal((t.fileOffset - g.dataOffset) % align, 0, `${t.name}: offset aligned to ${align} (ggml refuses others)`)
      }
    }), FUZZ)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
