import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import type { Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { Libp2p } from '@libp2p/interface'
import { BulkServer, WEIGHTS_PROTOCOL, WEIGHTS_PROTOCOLS, createWeightsHandler, requestChunksBulk, requestManifest } from '../../src/protocols/weights/index.js'
import { LocalWeightsSource } from '../../src/node/peer-fetch/local-weights-source.js'
import { PeerModelFetch } from '../../src/node/peer-fetch/peer-model-fetch.js'
import type { ChunkFetcher } from '../../src/node/peer-fetch/chunk-fetcher.js'
import { modelIdOfPath } from '../../src/node/model-registry.js'
import { createLogger } from '../../src/shared/log.js'
import { generatedModel } from '../model/helpers/generated-models.js'
import { startNode } from '../helpers/libp2p-pair.js'

/**
 * protocols/weights.md "Bulk path (1.1.0)" between real libp2p nodes on 127.0.0.1: ranges travel sealed
 * on a TCP connection outside Noise/yamux; a fetcher falls back to the libp2p stream when the bulk
 * connection cannot be made, its HELLO is refused (wrong token) or a record was tampered with on the way
 * — and still fetches from the same holder, whose bytes are verified as always. Old (1.0.0) holders and
 * holders without a bulk listener keep working.
 */
const modelPath = generatedModel('q8_0', { layers: 6, embd: 512, heads: 8, kvHeads: 8, ff: 1408, seed: 31 })
const modelId = modelIdOfPath(modelPath)
const file = readFileSync(modelPath)
const source = (): LocalWeightsSource => new LocalWeightsSource({ list: async () => [{ id: modelId, path: modelPath, sizeBytes: file.byteLength }] })

let bulkHolder: Libp2p, oldHolder: Libp2p, plainHolder: Libp2p, fetcher: Libp2p
const bulkServer = new BulkServer('127.0.0.1')
const bulkHandler = createWeightsHandler(source(), { bulk: bulkServer })
/** 1.1.0 without a bulk listener: BULK_RANGE_REQUEST answered with DATA on the stream */
const plainHandler = createWeightsHandler(source())
const oldHandler = createWeightsHandler(source())

before(async () => {
  [bulkHolder, oldHolder, plainHolder, fetcher] = await Promise.all([startNode(), startNode(), startNode(), startNode()])
  await bulkHolder.handle(WEIGHTS_PROTOCOLS, bulkHandler, { maxInboundStreams: 16 })
  await plainHolder.handle(WEIGHTS_PROTOCOLS, plainHandler, { maxInboundStreams: 16 })
  await oldHolder.handle(WEIGHTS_PROTOCOL, oldHandler, { maxInboundStreams: 16 })
  for (const h of [bulkHolder, oldHolder, plainHolder]) await fetcher.dial(h.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) })
})
after(async () => {
  await bulkHandler.close()
  await Promise.all([bulkHolder, oldHolder, plainHolder, fetcher].map(async (n) => { await n.stop() }))
})

/** Fetches the header and every layer from `holder` into a fresh dir; the copy's bytes must equal the model's. */
async function fetchAll (holder: Libp2p, toPort?: number): Promise<ChunkFetcher> {
  const dir = mkdtempSync(join(tmpdir(), 'weights-bulk-'))
  const fetch = new PeerModelFetch({
    modelId,
    dir,
    holders: () => [holder.peerId.toString()],
    dial: async (_p, signal) => await fetcher.dialProtocol(holder.peerId, WEIGHTS_PROTOCOLS, { signal }),
    bulkHost: () => '127.0.0.1',
    ...(toPort !== undefined ? { bulkAddress: (host: string) => ({ host, port: toPort }) } : {}),
    log: createLogger('test:bulk')
  })
  const signal = AbortSignal.timeout(30_000)
  await fetch.prepareHeader(signal)
  await fetch.ensureRange({ start: 0, end: 6 }, signal)
  const promoted = fetch.promoted
  assert.ok(promoted !== undefined, 'every chunk verified: the copy is promoted')
  assert.ok(readFileSync(promoted).equals(file), 'the fetched file is the model')
  const chunks = fetch.chunkFetcher!
  assert.deepEqual(chunks.holders().map((h) => h.status), ['ok'], 'the holder is never dropped')
  await fetch.stop()
  return chunks
}

/** A TCP relay to `port` that flips one byte at `at` of the direction `dir` (up: fetcher → holder). */
async function flippingRelay (port: number, dir: 'up' | 'down', at: number): Promise<Server> {
  const server = createServer((down) => {
    const up = connect(port, '127.0.0.1')
    let seen = 0
    const flip = (d: Buffer): Buffer => { if (seen <= at && at < seen + d.byteLength) d[at - seen]! ^= 0x01; seen += d.byteLength; return d }
    down.on('data', (d: Buffer) => { up.write(dir === 'up' ? flip(d) : d) })
    up.on('data', (d: Buffer) => { down.write(dir === 'down' ? flip(d) : d) })
    for (const [a, b] of [[down, up], [up, down]] as const) { a.on('end', () => { b.end() }); a.on('error', () => { b.destroy() }); a.on('close', () => { b.destroy() }) }
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  return server
}
const portOf = (s: Server): number => (s.address() as { port: number }).port

test('1.1.0: every range travels on the bulk path, verified, and the copy is the model', async () => {
  const before = bulkHandler.stats.bulkRanges
  const f = await fetchAll(bulkHolder)
  assert.ok(f.ranges.bulk > 0, 'ranges over the bulk path')
  assert.equal(f.ranges.stream, 0, 'none over the libp2p stream')
  assert.equal(bulkHandler.stats.bulkRanges - before, f.ranges.bulk)
  // the holder frees each connection when the fetcher closes it (a fetcher's FIN takes a moment)
  for (const t0 = Date.now(); bulkServer.connections > 0 && Date.now() - t0 < 2000;) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(bulkServer.connections, 0, 'no bulk connection lingers after its transfer')
})

test('no bulk connection possible (closed port): the same chunks come over the libp2p stream, from the same holder', async () => {
  const closed = createServer()
  await new Promise<void>((resolve) => { closed.listen(0, '127.0.0.1', resolve) })
  const port = portOf(closed)
  await new Promise<void>((resolve) => { closed.close(() => { resolve() }) })
  const f = await fetchAll(bulkHolder, port)
  assert.ok(f.ranges.stream > 0, 'fell back to the stream')
})

test('a wrong token (HELLO changed on the way) is refused without a byte: fallback, fetch completes', async () => {
  const port = await bulkServer.listen()
  const relay = await flippingRelay(port, 'up', 20)
  const refused = bulkServer.refused
  try {
    const f = await fetchAll(bulkHolder, portOf(relay))
    assert.ok(bulkServer.refused > refused, 'the holder refused the HELLO')
    assert.ok(f.ranges.stream > 0, 'fell back to the stream')
  } finally { relay.close() }
  // a stranger who knows the port but no ticket gets nothing either
  const sock = connect(port, '127.0.0.1')
  sock.write(Buffer.alloc(48, 7))
  const got: Buffer[] = []
  sock.on('data', (d: Buffer) => got.push(d))
  await new Promise<void>((resolve) => { sock.on('close', () => { resolve() }); sock.on('error', () => {}) })
  assert.equal(Buffer.concat(got).byteLength, 0, 'no byte for a forged ticket')
})

test('a record tampered with on the way fails to open: fallback to the stream, the holder is kept, the copy is the model', async () => {
  const port = await bulkServer.listen()
  // a byte inside the first record's ciphertext
  const relay = await flippingRelay(port, 'down', 5000)
  try {
    const f = await fetchAll(bulkHolder, portOf(relay))
    assert.ok(f.ranges.stream > 0, 'fell back to the stream')
  } finally { relay.close() }
})

test('older holders: a 1.0.0-only holder and a 1.1.0 holder without a bulk listener serve on the stream', async () => {
  const old = await fetchAll(oldHolder)
  assert.ok(old.ranges.stream > 0 && old.ranges.bulk === 0)
  assert.ok(oldHandler.stats.ranges > 0)
  const plain = await fetchAll(plainHolder)
  // it asked for bulk (1.1.0 was negotiated) and took the DATA the holder sent on the stream instead
  assert.ok(plain.ranges.bulk > 0)
  assert.equal(plainHandler.stats.bulkRanges, 0)
  assert.ok(plainHandler.stats.ranges > 0)
})

test('requestChunksBulk without a worker hands verified pieces to the caller, in order', async () => {
  const signal = AbortSignal.timeout(20_000)
  const dial = async (): Promise<import('@libp2p/interface').Stream> => await fetcher.dialProtocol(bulkHolder.peerId, WEIGHTS_PROTOCOLS, { signal })
  const m = await requestManifest(await dial(), modelId, { signal })
  const got: number[] = []
  await requestChunksBulk(await dial(), modelId, m, { first: 1, count: 2 }, async (i, pieces) => {
    got.push(i)
    assert.ok(Buffer.concat(pieces).equals(file.subarray(i * m.chunkBytes, Math.min((i + 1) * m.chunkBytes, m.fileBytes))), `chunk ${i}`)
  }, { signal, host: '127.0.0.1' })
  assert.deepEqual(got, [1, 2])
})
