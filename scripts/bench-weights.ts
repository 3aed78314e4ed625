#!/usr/bin/env -S node --import tsx
/**
 * Peer fetch on 127.0.0.1 (protocols/weights.md), two processes — a holder (child) and a fetcher (this
 * process) — over one real libp2p connection (TCP + Noise + Yamux, the node's settings):
 *
 * 1. MB/s of fetching a range of layers (`/exo-p2p/weights/1.1.0`, the bulk path: chunks verified,
 *    written to a sparse copy) against a raw TCP copy of the same bytes from the same holder process into
 *    a file, rounds taking turns; prints the ratio (goal ≥ 0.5×) and the CPU-s per GB of both processes;
 *    then (unless `--bulk-only`) the same fetch over the libp2p stream (1.0.0) and bare libp2p streams.
 * 2. A running 2-stage decode stream over the same connection — this process runs layers [0, k) with the
 *    engine, the holder runs [k, n) + output and returns the greedy token, hidden states as activation
 *    DECODE frames — in segments taking turns without and with a fetch from that holder (one that yields
 *    to activations as nodes do, and an uncapped one); prints the p99 inter-token ratios (goal < 1.2×).
 *
 *   node --import tsx scripts/bench-weights.ts [--layers 16] [--embd 1024] [--ff 2816] [--rounds 3] [--tokens 200] [--segment 10] [--bulk-only] [--fetch-only] [--decode-over-stream]
 *
 * `--bulk-only` measures only the bulk path against raw TCP in part 1. `--fetch-only` stops after part 1 (e.g. to profile the fetch: `NODE_OPTIONS=--cpu-prof`, both processes).
 * The machine's load average is printed with the numbers.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { makeModel, DEFAULTS } from './make-model.js'
import { copyRanges, processCpu, serveFileRanges } from './bench-weights-raw.js'
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

const { values } = parseArgs({ options: { child: { type: 'string' }, split: { type: 'string' }, yield: { type: 'boolean' }, layers: { type: 'string' }, embd: { type: 'string' }, ff: { type: 'string' }, rounds: { type: 'string' }, tokens: { type: 'string' }, 'fetch-only': { type: 'boolean' }, 'bulk-only': { type: 'boolean' }, segment: { type: 'string' }, 'decode-over-stream': { type: 'boolean' } } })
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
  const tcpPort = await serveFileRanges(path)
  process.stdout.write(JSON.stringify({ addr: n.getMultiaddrs()[0]!.toString(), tcpPort }) + '\n')
}

if (values.child !== undefined) {
  // a clean exit on kill, so `--cpu-prof` writes the holder's profile too
  process.on('SIGTERM', () => { process.exit(0) })
  await child(values.child, int(values.split, 1))
} else {
  const shape = { layers: int(values.layers, 16), embd: int(values.embd, 1024), ff: int(values.ff, 2816), heads: 16, kvHeads: 4 }
  const ROUNDS = int(values.rounds, 3)
  const TOKENS = int(values.tokens, 200)
  const SEGMENT = int(values.segment, 10)
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
  /** fetches over the bulk path (1.1.0), or over the libp2p stream (1.0.0) as before it */
  let viaStream = false
  const dial = async (peer: string, signal: AbortSignal): Promise<import('@libp2p/interface').Stream> => await me.dialProtocol(peer === yieldingHolder.toString() ? yieldingHolder : holder, viaStream ? WEIGHTS_PROTOCOL : WEIGHTS_PROTOCOLS, { signal })
  const bulkHost = (): string => '127.0.0.1'
  let decoding = false
  /** the decode part's gate (interleaved): fetches wait here while their segment is "without" */
  let gatePace = async (): Promise<void> => {}
  const work = mkdtempSync(join(tmpdir(), 'bench-weights-'))
  const range = { start: 2, end: meta.nLayers - 2 }
  let runs = 0

  /** One peer fetch of the header + `range` into a fresh sparse copy; bytes fetched and seconds. */
  async function peerFetch (yieldFlag = false, prepared?: Prepared): Promise<{ bytes: number, s: number }> {
    const t0 = performance.now()
    const { f, d } = prepared ?? await prepareFetch(yieldFlag)
    await f.ensureRange(range, AbortSignal.timeout(600_000))
    const s = (performance.now() - t0) / 1000
    const bytes = f.progress(undefined)!.verifiedBytes
    await f.stop()
    await rm(d, { recursive: true, force: true })
    return { bytes, s }
  }
  type Prepared = { f: PeerModelFetch, d: string }
  /** A fetch with its manifest and header fetched and the range's chunks computed (parsing the header): only the range's bytes are left. */
  async function prepareFetch (yieldFlag: boolean): Promise<Prepared> {
    const d = join(work, `fetch-${runs++}`)
    const from = yieldFlag ? yieldingHolder : holder
    const busy = busyPacer(() => decoding)
    const pace = async (bytes: number, signal: AbortSignal): Promise<void> => { await gatePace(); if (yieldFlag) await busy(bytes, signal) }
    const f = new PeerModelFetch({ modelId: modelIdOfPath(path), dir: d, holders: () => [from.toString()], dial, bulkHost, log: createLogger('bench'), pace })
    await f.prepareHeader(AbortSignal.timeout(600_000))
    f.chunksFor(range)
    return { f, d }
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
  const rawCopy = async (cs: number[], chunkBytes: number, fileBytes: number): Promise<{ bytes: number, s: number }> => await copyRanges(info.tcpPort, cs.map((c) => chunkSpan({ fileBytes, chunkBytes }, c)), join(work, `raw-${runs++}`))
  /** CPU-s per GB of both processes together while `op` ran */
  const cpuPerGb: Record<string, number[]> = { raw: [], bulk: [], stream: [], floor: [] }
  async function measured (what: string, op: () => Promise<{ bytes: number, s: number }>): Promise<{ bytes: number, s: number }> {
    // let the previous operation's leftovers (GC, closing streams) finish first: they are not this one's cost
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const h0 = await processCpu(info.tcpPort); const m0 = process.cpuUsage()
    const r = await op()
    const m = process.cpuUsage(m0); const h = await processCpu(info.tcpPort) - h0
    cpuPerGb[what]!.push(((m.user + m.system) / 1e6 + h) / (r.bytes / 1e9))
    return r
  }
  const mbs = (r: { bytes: number, s: number }): number => r.bytes / r.s / 1e6
  const fetchRates: number[] = []; const rawRates: number[] = []; const bulkRates: number[] = []; const streamRates: number[] = []
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
  /** One decode stream of TOKENS tokens; each inter-token gap with the token position it ended at. */
  async function decode (yieldFlag = false, onToken?: (pos: number) => void): Promise<Array<{ pos: number, ms: number }>> {
    const stage = stages.get(yieldFlag)!
    decoding = true
    const session = first.createSession({ contextSize: 1024 })
    const gaps: Array<{ pos: number, ms: number }> = []
    let token = 1
    let last = performance.now()
    for (let pos = 0; pos < TOKENS; pos++) {
      onToken?.(pos)
      const out = await session.forward({ kind: 'tokens', tokens: Int32Array.of(token) })
      if (out.kind !== 'hidden') throw new Error('expected a hidden state')
      await stage.send(encodeActivationFrame({ type: 'decode', requestId, planId, start: pos, count: 1, last: false, dtype: DType.F32, nEmbd: meta.nEmbd, hidden: out.hidden }))
      const f = decodeActivationFrame((await stage.next())!)
      if (f.type !== 'result') throw new Error('expected RESULT')
      token = f.tokenId
      const now = performance.now()
      if (pos > 0) gaps.push({ pos, ms: now - last })
      last = now
    }
    session.dispose()
    decoding = false
    releaseGate()
    return gaps
  }
  const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!
  /** while decoding, the fetcher moves bytes only while the gate is open (segments "with a fetch") */
  let gateOpen = true
  let gateWaiters: Array<() => void> = []
  function releaseGate (): void { const w = gateWaiters; gateWaiters = []; for (const f of w) f() }
  gatePace = async () => { while (decoding && !gateOpen) await new Promise<void>((resolve) => gateWaiters.push(resolve)) }
  /**
   * One decode stream over the link of a holder that serves fetches meanwhile, in segments of SEGMENT
   * tokens taking turns: without a fetch (the fetcher's gate closed; what the holder had sent is drained)
   * and with one — so both kinds of gaps come from the same stream under the same machine load. Each
   * fetch's setup (manifest, header, parsing the tensor table: ~50–200 ms of the event loop, once per
   * fetch, which a node does when planned) happens before the stream starts; what the stream shares
   * is the data flow. Gaps that end in a segment count for it.
   */
  async function interleaved (yieldFlag: boolean): Promise<{ without: number[], with: number[] }> {
    let done = false
    const ready = await Promise.all([0, 1, 2, 3].map(async () => await prepareFetch(yieldFlag)))
    const fetching = (async () => {
      while (!done) await peerFetch(yieldFlag, ready.shift())
      for (const p of ready) { await p.f.stop(); await rm(p.d, { recursive: true, force: true }) }
    })()
    const on = (pos: number): boolean => Math.floor(pos / SEGMENT) % 2 === 1
    const gaps = await decode(yieldFlag, (pos) => { gateOpen = on(pos); if (gateOpen) releaseGate() })
    done = true
    await fetching
    return { without: gaps.filter((g) => !on(g.pos)).map((g) => g.ms), with: gaps.filter((g) => on(g.pos)).map((g) => g.ms) }
  }
  // `--decode-over-stream`: part 2's fetches over the libp2p stream (1.0.0), as before the bulk path
  viaStream = values['decode-over-stream'] === true
  await decode(); await decode(true) // warm-up
  const pooled = { uncapped: { without: [] as number[], with: [] as number[] }, yielding: { without: [] as number[], with: [] as number[] } }
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, y] of [['uncapped', false], ['yielding', true]] as const) {
      const g = await interleaved(y)
      pooled[k].without.push(...g.without)
      pooled[k].with.push(...g.with)
    }
  }
  const line = (k: 'uncapped' | 'yielding'): string => `without ${fmt(p99(pooled[k].without))} with ${fmt(p99(pooled[k].with))} (${fmt(p99(pooled[k].with) / p99(pooled[k].without))}×; medians ${fmt(median(pooled[k].without))} / ${fmt(median(pooled[k].with))})`
  process.stdout.write([
    `model ${path} (${(manifest.fileBytes / 1e6).toFixed(0)} MB, ${meta.nLayers} layers); fetched layers [${range.start}, ${range.end}) + header = ${chunks.length} chunks of 4 MiB, ${ROUNDS} rounds taking turns`,
    fetchLine,
    `decode stream, 2 stages over the same connection, fetches over ${viaStream ? 'the libp2p stream (1.0.0)' : 'the bulk path (1.1.0)'}, p99 inter-token ms over ${ROUNDS} streams of ${TOKENS} tokens in segments of ${SEGMENT} taking turns without / with a fetch on the link:`,
    `  fetch that yields to activations (both ends at ${BUSY_WEIGHTS_BYTES_PER_SEC / 1e6} MB/s while decoding, as nodes do): ${line('yielding')} (goal < 1.2×)`,
    `  uncapped fetch: ${line('uncapped')}`,
    `load average ${loadavg().map(fmt).join(' ')} on ${availableParallelism()} cores`
  ].join('\n') + '\n')
  await first.dispose(); await me.stop(); proc.kill(); yielding.proc.kill()
  rmSync(work, { recursive: true, force: true })
}
