import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { after, before, test } from 'node:test'
import type { Libp2p } from '@libp2p/interface'
import { createHash } from 'node:crypto'
import { createWeightsHandler, Provenance, requestChunks, requestManifest, WEIGHTS_PROTOCOL } from '../../src/protocols/weights/index.js'
import { shardFileRanges } from '../../src/engine/index.js'
import { readModelMetadata } from '../../src/engine/model-description.js'
import { LocalWeightsSource } from '../../src/node/peer-fetch/local-weights-source.js'
import { PeerModelFetch } from '../../src/node/peer-fetch/peer-model-fetch.js'
import { modelIdOfPath } from '../../src/node/model-registry.js'
import { ChunkVerificationError, WeightsRequestError } from '../../src/shared/errors/protocol-errors.js'
import { createLogger } from '../../src/shared/log.js'
import { generatedModel } from '../model/helpers/generated-models.js'
import { splitGguf } from '../../scripts/split-gguf.js'
import { startNode } from '../helpers/libp2p-pair.js'

/** ~2.2 MB per layer in Q8_0: a stage spans chunks of its own */
const modelPath = generatedModel('q8_0', { layers: 6, embd: 512, heads: 8, kvHeads: 8, ff: 1408, seed: 31 })
const modelId = modelIdOfPath(modelPath)
const file = readFileSync(modelPath)
const entry = { id: modelId, path: modelPath, sizeBytes: file.byteLength }

let honest: Libp2p, tamperer: Libp2p, fetcher: Libp2p
const honestHandler = createWeightsHandler(new LocalWeightsSource({ list: async () => [entry] }))
const tamperHandler = createWeightsHandler(new LocalWeightsSource({ list: async () => [entry], tamper: true }))

before(async () => {
  [honest, tamperer, fetcher] = await Promise.all([startNode(), startNode(), startNode()])
  await honest.handle(WEIGHTS_PROTOCOL, honestHandler)
  await tamperer.handle(WEIGHTS_PROTOCOL, tamperHandler)
  for (const h of [honest, tamperer]) await fetcher.dial(h.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) })
})
after(async () => { await Promise.all([honest, tamperer, fetcher].map(async (n) => { await n.stop() })) })

const dial = async (peerId: string, signal: AbortSignal): Promise<import('@libp2p/interface').Stream> => {
  const target = [honest, tamperer].find((n) => n.peerId.toString() === peerId)!
  return await fetcher.dialProtocol(target.peerId, WEIGHTS_PROTOCOL, { signal })
}

/** Bytes allocated on disk (st_blocks × 512), as `stat` reports them. */
function allocatedBytes (path: string): number {
  return Number(execFileSync('stat', ['-c', '%b %B', path]).toString().trim().split(' ').reduce((a, b) => String(Number(a) * Number(b))))
}

test('manifest over a libp2p stream: size, header size, hashes; a tampering holder still sends the true manifest', async () => {
  const signal = AbortSignal.timeout(20_000)
  const m = await requestManifest(await dial(honest.peerId.toString(), signal), modelId, { signal })
  assert.equal(m.fileBytes, file.byteLength)
  assert.equal(m.chunkBytes, 4 << 20)
  assert.ok(m.headerBytes > 0 && m.headerBytes < 4 << 20, `header ${m.headerBytes}`)
  const t = await requestManifest(await dial(tamperer.peerId.toString(), signal), modelId, { signal })
  assert.deepEqual(t, m)
  await assert.rejects(requestManifest(await dial(honest.peerId.toString(), signal), 'nope', { signal }), (e: Error) => e instanceof WeightsRequestError && e.code === 'WEIGHTS_UNKNOWN_MODEL')
})

test('provenance: HUB when the Hub\'s sha256 of a pulled file matches it, LOCAL otherwise', async () => {
  const real = createHash('sha256').update(file).digest('hex')
  const signal = AbortSignal.timeout(20_000)
  const hub = await new LocalWeightsSource({ list: async () => [entry], hubSha256: async () => real }).manifest(modelId, signal)
  assert.equal(hub.provenance, Provenance.Hub)
  assert.equal(Buffer.from(hub.sha256).toString('hex'), real)
  const wrong = await new LocalWeightsSource({ list: async () => [entry], hubSha256: async () => '0'.repeat(64) }).manifest(modelId, signal)
  assert.equal(wrong.provenance, Provenance.Local)
})

test('range: verified chunks arrive; tampered bytes are rejected with ChunkVerificationError', async () => {
  const signal = AbortSignal.timeout(20_000)
  const m = await requestManifest(await dial(honest.peerId.toString(), signal), modelId, { signal })
  const got: number[] = []
  await requestChunks(await dial(honest.peerId.toString(), signal), modelId, m, { first: 1, count: 2 }, async (i, pieces) => {
    got.push(i)
    assert.deepEqual(Buffer.concat(pieces), file.subarray(i * m.chunkBytes, (i + 1) * m.chunkBytes))
  }, { signal })
  assert.deepEqual(got, [1, 2])
  await assert.rejects(requestChunks(await dial(tamperer.peerId.toString(), signal), modelId, m, { first: 0, count: 1 }, async () => { assert.fail('a tampered chunk was handed over') }, { signal }), ChunkVerificationError)
  await assert.rejects(requestChunks(await dial(honest.peerId.toString(), signal), modelId, { ...m, sha256: new Uint8Array(32) }, { first: 0, count: 1 }, async () => {}, { signal }), (e: Error) => e instanceof WeightsRequestError && e.code === 'WEIGHTS_FILE_CHANGED')
})

test('peer fetch of a middle stage from two holders, one tampering: only header + the stage\'s chunks, all from the honest one, resumable', async () => {
  const dir = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'weights-fetch-'))
  const holders = (): string[] => [tamperer.peerId.toString(), honest.peerId.toString()]
  const fetch = new PeerModelFetch({ modelId, dir, holders, dial, log: createLogger('test:fetch') })
  const signal = AbortSignal.timeout(40_000)
  const path = await fetch.prepareHeader(signal)
  const meta = readModelMetadata(path) // the header alone is enough for the metadata
  assert.equal(meta.nLayers, 6)
  const range = { start: 2, end: 4 }
  await fetch.ensureRange(range, signal)
  const fetcher1 = fetch.chunkFetcher!
  assert.equal(fetcher1.holders().find((h) => h.peerId === tamperer.peerId.toString())?.status, 'dropped')
  assert.equal(fetcher1.bytesFrom.get(tamperer.peerId.toString()) ?? 0, 0)
  const copy = readFileSync(path)
  assert.equal(copy.byteLength, file.byteLength)
  for (const r of shardFileRanges(modelPath, range)) assert.ok(copy.subarray(r.offset, r.offset + r.bytes).equals(file.subarray(r.offset, r.offset + r.bytes)), `tensor ${r.name} differs`)
  const m = fetch.manifest!
  assert.ok(copy.subarray(0, m.headerBytes).equals(file.subarray(0, m.headerBytes)))
  const chunks = new Set([...fetch.chunksFor(range)[0]!, 0])
  const allocated = allocatedBytes(path)
  assert.ok(allocated <= chunks.size * m.chunkBytes + 65536, `allocated ${allocated} > ${chunks.size} chunks`)
  assert.ok(allocated < statSync(path).size * 0.7, `allocated ${allocated} of ${statSync(path).size}`)
  assert.deepEqual(fetch.progress(6)?.layers, [[2, 4]])
  await fetch.stop()
  // a second run resumes: nothing more is fetched for the same range
  const again = new PeerModelFetch({ modelId, dir, holders: () => [honest.peerId.toString()], dial, log: createLogger('test:fetch') })
  const before = honestHandler.stats.bytes
  await again.prepareHeader(signal)
  await again.ensureRange(range, signal)
  assert.equal(honestHandler.stats.bytes - before, 0)
  await again.stop()
})

test('a fetch of every layer is promoted: whole-file sha256 checked, the file moves into the store, the partial copy goes', async () => {
  const models = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'weights-promote-'))
  const dir = join(models, '.partial')
  let promoted: string | undefined
  const fetch = new PeerModelFetch({ modelId, dir, holders: () => [honest.peerId.toString()], dial, log: createLogger('test:fetch'), onPromoted: (p) => { promoted = p } })
  const signal = AbortSignal.timeout(40_000)
  await fetch.prepareHeader(signal)
  assert.equal(fetch.promoted, undefined, 'the header alone is a partial copy')
  await fetch.ensureRange({ start: 0, end: 6 }, signal)
  assert.equal(promoted, join(models, `${modelId}.gguf`))
  assert.equal(fetch.path, promoted)
  assert.ok(readFileSync(promoted).equals(file))
  assert.deepEqual(readdirSync(dir), [], 'the partial copy and its state file are gone')
  assert.equal(fetch.progress(6), undefined, 'no partial copy to announce')
  await fetch.stop()
})

test('--fetch-whole: after the stage, the rest comes in the background and the copy is promoted; a manifest whose whole-file sha256 lies is never promoted', async () => {
  const models = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'weights-whole-'))
  const signal = AbortSignal.timeout(40_000)
  const done = new Promise<string>((resolve) => {
    const fetch = new PeerModelFetch({ modelId, dir: join(models, '.partial'), holders: () => [honest.peerId.toString()], dial, log: createLogger('test:fetch'), completeCopy: true, onPromoted: (p) => { void fetch.stop(); resolve(p) } })
    void fetch.prepareHeader(signal).then(async () => { await fetch.ensureRange({ start: 2, end: 3 }, signal) })
  })
  assert.ok(readFileSync(await done).equals(file))

  // a holder whose manifest has true chunk hashes but another whole-file hash: every chunk verifies, the file does not
  const liar = await startNode()
  const real = new LocalWeightsSource({ list: async () => [entry] })
  const wrongSha = new Uint8Array(32).fill(7)
  await liar.handle(WEIGHTS_PROTOCOL, createWeightsHandler({ manifest: async (id, s) => ({ ...await real.manifest(id, s), sha256: wrongSha }), reader: async (id, s) => await real.reader(id) }))
  try {
    await fetcher.dial(liar.getMultiaddrs()[0]!, { signal })
    const lies = join(mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'weights-lie-')), '.partial')
    const fetch = new PeerModelFetch({ modelId, dir: lies, holders: () => [liar.peerId.toString()], dial: async (_p, s) => await fetcher.dialProtocol(liar.peerId, WEIGHTS_PROTOCOL, { signal: s }), log: createLogger('test:fetch') })
    await fetch.prepareHeader(signal)
    await fetch.ensureRange({ start: 0, end: 6 }, signal)
    assert.equal(fetch.promoted, undefined)
    assert.deepEqual(readdirSync(join(lies, '..')).filter((n) => n.endsWith('.gguf')), [], 'nothing in the store')
    await fetch.stop()
  } finally {
    await liar.stop()
  }
})

test('a 3-part split model: each part is a file with its own manifest; a stage fetches its ranges from the parts that hold them, then all layers promote all parts', async () => {
  const src = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'weights-split-src-'))
  const parts = splitGguf({ input: modelPath, outPrefix: join(src, 'sp'), parts: 3 })
  const holder = await startNode()
  const source = new LocalWeightsSource({ list: async () => [{ id: modelIdOfPath(parts[0]!), path: parts[0]!, sizeBytes: 0 }] })
  const handler = createWeightsHandler(source)
  await holder.handle(WEIGHTS_PROTOCOL, handler)
  const signal = AbortSignal.timeout(40_000)
  try {
    await fetcher.dial(holder.getMultiaddrs()[0]!, { signal })
    const models = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'weights-split-'))
    const dir = join(models, '.partial')
    const start = (): PeerModelFetch => new PeerModelFetch({ modelId: 'sp', dir, holders: () => [holder.peerId.toString()], dial: async (_p, s) => await fetcher.dialProtocol(holder.peerId, WEIGHTS_PROTOCOL, { signal: s }), log: createLogger('test:fetch') })
    const early = start()
    const first = await early.prepareHeader(signal)
    assert.equal(first, join(dir, 'sp-00001-of-00003.gguf'))
    assert.deepEqual(early.manifests.map((m) => m.fileBytes), parts.map((p) => statSync(p).size))
    const range = { start: 2, end: 4 }
    await early.ensureRange(range, signal)
    await early.stop()
    // a restart resumes every part, part 1 under its split name: nothing is fetched again
    const fetch = start()
    const served = handler.stats.bytes
    assert.equal(await fetch.prepareHeader(signal), first)
    await fetch.ensureRange(range, signal)
    assert.equal(handler.stats.bytes - served, 0, 'bytes served again after the restart')
    for (const r of shardFileRanges(first, range)) {
      const real = readFileSync(join(src, basename(r.path)))
      assert.ok(readFileSync(r.path).subarray(r.offset, r.offset + r.bytes).equals(real.subarray(r.offset, r.offset + r.bytes)), `tensor ${r.name} in ${basename(r.path)} differs`)
    }
    assert.equal(fetch.promoted, undefined)
    await fetch.ensureRange({ start: 0, end: 6 }, signal)
    assert.equal(fetch.promoted, join(models, 'sp-00001-of-00003.gguf'))
    for (const p of parts) assert.ok(readFileSync(join(models, basename(p))).equals(readFileSync(p)), `${basename(p)} in the store`)
    assert.deepEqual(readdirSync(dir), [])
    await fetch.stop()
  } finally {
    await holder.stop()
  }
})
