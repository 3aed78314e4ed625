#!/usr/bin/env -S node --import tsx
/**
 * Peer fetch on 127.0.0.1 (protocols/weights.md), two processes — a holder (child) and a fetcher (this
 * process) — over one real libp2p connection (TCP + Noise + Yamux, the node's settings):
 *
 * 1. MB/s of fetching a range of layers (`/exo-p2p/weights/1.0.0`: chunks verified, written to a sparse
 *    copy) against a raw TCP copy of the same bytes from the same holder process into a file, rounds
 *    taking turns; prints the ratio (goal ≥ 0.5×).
 * 2. A running 2-stage decode stream over the same connection — this process runs layers [0, k) with the
 *    engine, the holder runs [k, n) + output and returns the greedy token, hidden states as activation
 *    DECODE frames — its p99 inter-token latency alone and while a fetch shares the link (uncapped, and
 *    with the fetcher's `--fetch-max-rate` cap); prints the ratios (goal < 1.2×).
 *
 *   node --import tsx scripts/bench-weights.ts [--layers 16] [--embd 1024] [--ff 2816] [--rounds 3] [--tokens 120] [--fetch-only]
 *
 * `--bulk-only` measures only the bulk path against raw TCP in part 1. `--fetch-only` stops after part 1 (e.g. to profile the fetch: `NODE_OPTIONS=--cpu-prof`, both processes).
 * The machine's load average is printed with the numbers.
 */
import { spawn } from 'node:child_process'
import { createConnection, createServer } from 'node:net'
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { makeModel, DEFAULTS } from './make-model.js'
import { loadShard, readModelMetadata } from '../src/engine/index.js'
import { createMeshLibp2p } from '../src/mesh/create-libp2p.js'
import { FramedStream } from '../src/protocols/framed-stream.js'
import { encodeFrame } from '../src/protocols/framing.js'
import { STREAMS_PER_HOLDER } from '../src/node/peer-fetch/chunk-fetcher.js'
import { decodeActivationFrame, encodeActivationFrame } from '../src/protocols/activations/codec.js'
import { ACTIVATIONS_PROTOCOL } from '../src/protocols/activations/index.js'
import { BulkServer, WEIGHTS_PROTOCOL, WEIGHTS_PROTOCOLS, chunkSpan, createWeightsHandler } from '../src/protocols/weights/index.js'
import { LocalWeightsSource } from '../src/node/peer-fetch/local-weights-source.js'
import { PeerModelFetch } from '../src/node/peer-fetch/peer-model-fetch.js'
import { BUSY_WEIGHTS_BYTES_PER_SEC, busyPacer } from '../src/node/peer-fetch/busy-pacer.js'
import { modelIdOfPath } from '../src/node/model-registry.js'
import { createLogger } from '../src/shared/log.js'
import { asPlanId, asRequestId } from '../src/shared/ids.js'
import { DType } from '../src/shared/tensor.js'

const { values } = parseArgs({ options: { child: { type: 'string' }, split: { type: 'string' }, yield: { type: 'boolean' }, layers: { type: 'string' }, embd: { type: 'string' }, ff: { type: 'string' }, rounds: { type: 'string' }, tokens: { type: 'string' }, 'fetch-only': { type: 'boolean' }, 'bulk-only': { type: 'boolean' } } })
const int = (v: string | undefined, d: number): number => v === undefined ? d : Number(v)
const yieldToActivations = values.yield === true
const STAGE_PROTOCOL = `${ACTIVATIONS_PROTOCOL}-bench-weights`
/** the libp2p floor: N MiB of 1 MiB frames over one stream, no file, no hashing ("N\n" → frames) */
const BULK_PROTOCOL = '/exo-p2p/bench-weights/bulk'
const planId = asPlanId('0'.repeat(64))
const requestId = asRequestId('bench')
const node = async (): Promise<Awaited<ReturnType<typeof createMeshLibp2p>>> => {
  const n = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), host: '127.0.0.1', port: 0, clusterKeyHex: undefined, mdns: false })
  await n.start()
  return n
}

/** Holder: weights protocol + the decode stage [split, n) + a raw TCP server of file ranges ("offset length\n" → bytes). */
async function child (path: string, split: number): Promise<void> {
  const n = await node()
  // as a node does: weights yield while this stage has a decode stream (a frame within the last 300 ms)
  let lastFrame = -Infinity
  const busy = (): boolean => yieldToActivations && performance.now() - lastFrame < 300
  const source = new LocalWeightsSource({ list: async () => [{ id: modelIdOfPath(path), path, sizeBytes: 0 }] })
  await n.handle(WEIGHTS_PROTOCOLS, createWeightsHandler(source, { pace: busyPacer(busy), bulk: new BulkServer('127.0.0.1') }), { maxInboundStreams: 16 })
  const meta = readModelMetadata(path)
  const shard = await loadShard({ modelPath: path, range: { start: split, end: meta.nLayers }, threads: 1, flashAttention: true })
  await n.handle(STAGE_PROTOCOL, (stream) => {
    const framed = new FramedStream(stream, 1 << 24)
    void (async () => {
      let session = shard.createSession({ contextSize: 1024 })
      for (;;) {
        const raw = await framed.next()
        if (raw === undefined) return
        const f = decodeActivationFrame(raw)
        if (f.type !== 'decode') continue
        lastFrame = performance.now()
        if (f.start === 0) { session.dispose(); session = shard.createSession({ contextSize: 1024 }) }
        const out = await session.forward({ kind: 'hidden', hidden: f.hidden, nTokens: 1 }, { logits: 'last' })
        if (out.kind !== 'logits') throw new Error('expected logits')
        let best = 0
        for (let i = 1; i < out.logits.length; i++) if (out.logits[i]! > out.logits[best]!) best = i
        await framed.send(encodeActivationFrame({ type: 'result', requestId, planId, position: f.start + 1, tokenId: best }))
      }
    })().catch(() => {})
  })
  await n.handle(BULK_PROTOCOL, (stream) => {
    const framed = new FramedStream(stream, 1 << 24)
    void (async () => {
      const req = await framed.next()
      const frame = new Uint8Array(5 + (1 << 20))
      new DataView(frame.buffer).setUint32(0, 1 + (1 << 20), true)
      for (let i = 0; i < (req?.body[0] ?? 0); i++) await framed.send(frame.slice())
      await framed.close()
    })().catch(() => {})
  }, { maxInboundStreams: 16 })
  const fh = await open(path, 'r')
  const tcp = createServer((sock) => {
    let buf = ''
    sock.on('data', (d) => {
      buf += d.toString()
      void (async () => {
        for (let i; (i = buf.indexOf('\n')) >= 0;) {
          const line = buf.slice(0, i)
          buf = buf.slice(i + 1)
          if (line === 'cpu') { const u = process.cpuUsage(); sock.write(JSON.stringify({ s: (u.user + u.system) / 1e6 }).padEnd(128)); continue }
          const [off, len] = line.split(' ').map(Number)
          const b = Buffer.allocUnsafe(len!)
          await fh.read(b, 0, len!, off!)
          if (!sock.write(b)) await new Promise((resolve) => sock.once('drain', resolve))
        }
      })()
    })
  }).listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ addr: n.getMultiaddrs()[0]!.toString(), tcpPort: (tcp.address() as { port: number }).port }) + '\n')
  })
}

if (values.child !== undefined) {
  // a clean exit on kill, so `--cpu-prof` writes the holder's profile too
  process.on('SIGTERM', () => { process.exit(0) })
  await child(values.child, int(values.split, 1))
} else {
  const shape = { layers: int(values.layers, 16), embd: int(values.embd, 1024), ff: int(values.ff, 2816), heads: 16, kvHeads: 4 }
  const ROUNDS = int(values.rounds, 3)
  const TOKENS = int(values.tokens, 120)
  const dir = join(tmpdir(), 'exo-p2p-bench')
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `bench-weights-${shape.layers}x${shape.embd}ff${shape.ff}-q8_0.gguf`)
  if (!existsSync(path)) { process.stderr.write(`generating ${path} …\n`); makeModel({ ...DEFAULTS, ...shape, type: 'q8_0', out: path, reuseLayers: true }) }
  const meta = readModelMetadata(path)
  const split = Math.floor(meta.nLayers / 2)
  const spawnChild = async (yieldFlag: boolean): Promise<{ proc: ReturnType<typeof spawn>, info: { addr: string, tcpPort: number } }> => {
    const proc = spawn(process.execPath, [...process.execArgv.filter((x) => x.startsWith('--cpu-prof')), '--import', 'tsx', 'scripts/bench-weights.ts', '--child', path, '--split', String(split), ...(yieldFlag ? ['--yield'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] })
    const info = await new Promise<{ addr: string, tcpPort: number }>((resolve) => { proc.stdout!.once('data', (d: Buffer) => { resolve(JSON.parse(d.toString()) as { addr: string, tcpPort: number }) }) })
    return { proc, info }
  }
  const { proc, info } = await spawnChild(false)
  const yielding = await spawnChild(true)
  const me = await node()
  const holder = (await me.dial(multiaddr(info.addr))).remotePeer
  const yieldingHolder = (await me.dial(multiaddr(yielding.info.addr))).remotePeer
  /** the bulk path (1.1.0) by default; `--stream-only`: the libp2p stream (1.0.0), as before the bulk path */
  let viaStream = false
  const dial = async (peer: string, signal: AbortSignal): Promise<import('@libp2p/interface').Stream> => await me.dialProtocol(peer === yieldingHolder.toString() ? yieldingHolder : holder, viaStream ? WEIGHTS_PROTOCOL : WEIGHTS_PROTOCOLS, { signal })
  const bulkHost = (): string => '127.0.0.1'
  let decoding = false
  const work = mkdtempSync(join(tmpdir(), 'bench-weights-'))
  const range = process.env.BENCH_RANGE !== undefined ? { start: Number(process.env.BENCH_RANGE.split(",")[0]), end: Number(process.env.BENCH_RANGE.split(",")[1]) } : { start: 2, end: meta.nLayers - 2 }
  let runs = 0

  /** One peer fetch of the header + `range` into a fresh sparse copy; bytes fetched and seconds. */
  async function peerFetch (yieldFlag = false): Promise<{ bytes: number, s: number }> {
    const d = join(work, `fetch-${runs++}`)
    const from = yieldFlag ? yieldingHolder : holder
    const f = new PeerModelFetch({ modelId: modelIdOfPath(path), dir: d, holders: () => [from.toString()], dial, bulkHost, log: createLogger('bench'), ...(yieldFlag ? { pace: busyPacer(() => decoding) } : {}) })
    const t0 = performance.now()
    await f.prepareHeader(AbortSignal.timeout(600_000))
    await f.ensureRange(range, AbortSignal.timeout(600_000))
    const s = (performance.now() - t0) / 1000
    const bytes = f.progress(undefined)!.verifiedBytes
    await f.stop()
    rmSync(d, { recursive: true, force: true })
    return { bytes, s }
  }

  /** Raw TCP copy of the same chunks from the holder process into a file of full size. */
  async function rawCopy (chunks: number[], chunkBytes: number, fileBytes: number): Promise<{ bytes: number, s: number }> {
    const out = join(work, `raw-${runs++}`)
    const fd = openSync(out, 'w')
    const t0 = performance.now()
    const sock = createConnection(info.tcpPort, '127.0.0.1')
    let total = 0
    for (const c of chunks) {
      const { start, end } = chunkSpan({ fileBytes, chunkBytes }, c)
      sock.write(`${start} ${end - start}\n`)
      let got = 0
      while (got < end - start) {
        const data = await new Promise<Buffer>((resolve) => { sock.once('data', resolve) })
        const take = data.subarray(0, end - start - got)
        writeSync(fd, take, 0, take.length, start + got)
        got += take.length
        if (take.length < data.length) sock.unshift(data.subarray(take.length))
      }
      total += got
    }
    sock.destroy()
    closeSync(fd)
    const s = (performance.now() - t0) / 1000
    rmSync(out, { force: true })
    return { bytes: total, s }
  }

  // the chunks the peer fetch takes: measure once to copy the same ones raw
  const probe = new PeerModelFetch({ modelId: modelIdOfPath(path), dir: join(work, 'probe'), holders: () => [holder.toString()], dial, log: createLogger('bench') })
  await probe.prepareHeader(AbortSignal.timeout(600_000))
  const manifest = probe.manifest!
  const chunks = [...new Set([0, ...probe.chunksFor(range)[0]!])].sort((a, b) => a - b)
  await probe.stop()

  /** The same bytes over STREAMS_PER_HOLDER libp2p streams of the same connection, with nothing else: the stack's own cost. */
  async function bulk (mib: number): Promise<{ bytes: number, s: number }> {
    const t0 = performance.now()
    let bytes = 0
    const per = Math.ceil(mib / STREAMS_PER_HOLDER)
    await Promise.all(Array.from({ length: STREAMS_PER_HOLDER }, async () => {
      const framed = new FramedStream(await me.dialProtocol(holder, BULK_PROTOCOL), 1 << 24)
      await framed.send(encodeFrame(1, [Uint8Array.of(per)], 1 << 24))
      for (let f = await framed.next(); f !== undefined; f = await framed.next()) bytes += f.body.byteLength
    }))
    return { bytes, s: (performance.now() - t0) / 1000 }
  }
  /** CPU seconds the holder process has used so far */
  async function holderCpu (): Promise<number> {
    const sock = createConnection(info.tcpPort, '127.0.0.1')
    sock.write('cpu\n')
    let got = ''
    for await (const d of sock) { got += (d as Buffer).toString(); if (got.length >= 128) break }
    sock.destroy()
    return (JSON.parse(got) as { s: number }).s
  }
  /** CPU-s per GB of both processes together while `op` ran */
  const cpuPerGb: Record<string, number[]> = { raw: [], bulk: [], stream: [], floor: [] }
  async function measured (what: string, op: () => Promise<{ bytes: number, s: number }>): Promise<{ bytes: number, s: number }> {
    // let the previous operation's leftovers (GC, closing streams) finish first: they are not this one's cost
    const i0 = await holderCpu(); const im0 = process.cpuUsage()
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const h0 = await holderCpu(); const m0 = process.cpuUsage()
    if (process.env.BENCH_CPU_DETAIL !== undefined) { const im = process.cpuUsage(im0); process.stderr.write(`# idle second before ${what}: fetcher ${((im.user + im.system) / 1e6).toFixed(3)} holder ${(h0 - i0).toFixed(3)} CPU-s\n`) }
    const r = await op()
    const m = process.cpuUsage(m0); const h = await holderCpu() - h0
    cpuPerGb[what]!.push(((m.user + m.system) / 1e6 + h) / (r.bytes / 1e9))
    if (process.env.BENCH_CPU_DETAIL !== undefined) process.stderr.write(`# ${what}: fetcher ${((m.user + m.system) / 1e6 / (r.bytes / 1e9)).toFixed(2)} (user ${(m.user / 1e6).toFixed(2)} s) holder ${(h / (r.bytes / 1e9)).toFixed(2)} CPU-s/GB\n`)
    return r
  }
  const mbs = (r: { bytes: number, s: number }): number => r.bytes / r.s / 1e6
  const fetchRates: number[] = []
  const rawRates: number[] = []
  const bulkRates: number[] = []
  const streamRates: number[] = []
  const bulkOnly = values['bulk-only'] === true
  for (let r = 0; r < ROUNDS; r++) {
    // taking turns: odd rounds fetch first
    if (r % 2 === 1) fetchRates.push(mbs(await measured('bulk', async () => await peerFetch())))
    rawRates.push(mbs(await measured('raw', async () => await rawCopy(chunks, manifest.chunkBytes, manifest.fileBytes))))
    if (r % 2 === 0) fetchRates.push(mbs(await measured('bulk', async () => await peerFetch())))
  }
  // the libp2p path after the bulk rounds: its leftovers (a larger heap, stream bookkeeping) make every later operation of both processes cost more
  for (let r = 0; r < ROUNDS && !bulkOnly; r++) {
    viaStream = true
    streamRates.push(mbs(await measured('stream', async () => await peerFetch())))
    viaStream = false
    bulkRates.push(mbs(await measured('floor', async () => await bulk(chunks.length * manifest.chunkBytes / (1 << 20)))))
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
  const fmt = (x: number): string => x.toFixed(2)
  const fetchMb = median(fetchRates); const rawMb = median(rawRates)
  const fetchLine = `layer fetch (weights 1.1.0 bulk path, verified, sparse copy): ${fmt(fetchMb)} MB/s   raw TCP copy of the same bytes: ${fmt(rawMb)} MB/s   ratio ${fmt(fetchMb / rawMb)}× (goal ≥ 0.5×); rounds fetch ${fetchRates.map(fmt).join(', ')} raw ${rawRates.map(fmt).join(', ')}` + (bulkOnly ? '' : `
the same fetch over the libp2p stream (weights 1.0.0): ${fmt(median(streamRates))} MB/s = ${fmt(median(streamRates) / rawMb)}× raw TCP; rounds ${streamRates.map(fmt).join(', ')}
libp2p streams alone (same connection and streams, 1 MiB frames, no file / hash): ${fmt(median(bulkRates))} MB/s = ${fmt(median(bulkRates) / rawMb)}× raw TCP`) +
  `\nCPU-s per GB, both processes (median): raw ${Object.entries(cpuPerGb).filter(([, v]) => v.length > 0).map(([k, v]) => `${k} ${fmt(median(v))}`).join('   ').slice(4)}`
  if (values['fetch-only'] === true) {
    process.stdout.write(`${fetchLine}\nload average ${loadavg().map(fmt).join(' ')} on ${availableParallelism()} cores\n`)
    await me.stop(); proc.kill(); yielding.proc.kill(); rmSync(work, { recursive: true, force: true })
    process.exit(0)
  }

  // decode stream: first stage here, the rest in the holder, over the same connection
  const first = await loadShard({ modelPath: path, range: { start: 0, end: split }, threads: 1, flashAttention: true })
  const stages = new Map([[false, new FramedStream(await me.dialProtocol(holder, STAGE_PROTOCOL), 1 << 24)], [true, new FramedStream(await me.dialProtocol(yieldingHolder, STAGE_PROTOCOL), 1 << 24)]])
  async function decode (yieldFlag = false): Promise<number[]> {
    const stage = stages.get(yieldFlag)!
    decoding = true
    const session = first.createSession({ contextSize: 1024 })
    const gaps: number[] = []
    let token = 1
    let last = performance.now()
    for (let pos = 0; pos < TOKENS; pos++) {
      const out = await session.forward({ kind: 'tokens', tokens: Int32Array.of(token) })
      if (out.kind !== 'hidden') throw new Error('expected a hidden state')
      await stage.send(encodeActivationFrame({ type: 'decode', requestId, planId, start: pos, count: 1, last: false, dtype: DType.F32, nEmbd: meta.nEmbd, hidden: out.hidden }))
      const f = decodeActivationFrame((await stage.next())!)
      if (f.type !== 'result') throw new Error('expected RESULT')
      token = f.tokenId
      const now = performance.now()
      if (pos > 0) gaps.push(now - last)
      last = now
    }
    session.dispose()
    decoding = false
    return gaps
  }
  const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!
  /** the decode stream and fetches over the same connection (to the holder of that mode) */
  async function decodeWhileFetching (yieldFlag: boolean): Promise<number[]> {
    let done = false
    const fetching = (async () => { while (!done) await peerFetch(yieldFlag) })()
    await new Promise((resolve) => setTimeout(resolve, 200))
    const gaps = await decode(yieldFlag)
    done = true
    await fetching
    return gaps
  }
  await decode(); await decode(true) // warm-up
  const alone: number[] = []; const shared: number[] = []; const yielded: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    alone.push(p99(await decode()))
    shared.push(p99(await decodeWhileFetching(false)))
    yielded.push(p99(await decodeWhileFetching(true)))
  }
  process.stdout.write([
    `model ${path} (${(manifest.fileBytes / 1e6).toFixed(0)} MB, ${meta.nLayers} layers); fetched layers [${range.start}, ${range.end}) + header = ${chunks.length} chunks of 4 MiB, ${ROUNDS} rounds taking turns`,
    fetchLine,
    `decode stream, 2 stages over the same connection, p99 inter-token ms (median of rounds): alone ${fmt(median(alone))}   with an uncapped fetch ${fmt(median(shared))} (${fmt(median(shared) / median(alone))}×)   with a fetch that yields to activations (both ends at ${BUSY_WEIGHTS_BYTES_PER_SEC / 1e6} MB/s while decoding, as nodes do) ${fmt(median(yielded))} (${fmt(median(yielded) / median(alone))}×) (goal < 1.2×)`,
    `load average ${loadavg().map(fmt).join(' ')} on ${availableParallelism()} cores`
  ].join('\n') + '\n')
  await first.dispose()
  await me.stop()
  proc.kill()
  yielding.proc.kill()
  rmSync(work, { recursive: true, force: true })
}
