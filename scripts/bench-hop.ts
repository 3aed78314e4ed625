#!/usr/bin/env -S node --import tsx
/**
 * What one activation hop costs on this machine, apart from any model: a 4 KiB DECODE-sized frame over
 * a real libp2p stream (TCP + Noise + Yamux, two nodes in this process, loopback), sent
 *   - back to back (warm: the code and data of the path are in the caches), and
 *   - after the process sat idle for `--idle` ms, as a pipeline stage does while the other stages compute
 *     (the default 18 ms is one 18-layer stage of the 0.5 GB bench model).
 * Prints the median µs of `send()` and of send → delivered (the receiver's FramedStream has the frame),
 * and their ratio. Run it pinned to one core to match bench-pipeline: `taskset -c 1 npx tsx scripts/bench-hop.ts`.
 *
 *   node --import tsx scripts/bench-hop.ts [--count 600] [--idle 18]
 */
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMeshLibp2p } from '../src/mesh/create-libp2p.js'
import { FramedStream } from '../src/protocols/framed-stream.js'
import { ACTIVATIONS_PROTOCOL } from '../src/protocols/activations/index.js'
import { encodeActivationFrame } from '../src/protocols/activations/codec.js'
import { asPlanId, asRequestId } from '../src/shared/ids.js'
import { DType } from '../src/shared/tensor.js'

const { values } = parseArgs({ options: { count: { type: 'string' }, idle: { type: 'string' } } })
const COUNT = Number.parseInt(values.count ?? '600', 10)
const IDLE_MS = Number.parseInt(values.idle ?? '18', 10)
const PROTOCOL = `${ACTIVATIONS_PROTOCOL}-bench`

const node = async (): Promise<Awaited<ReturnType<typeof createMeshLibp2p>>> => {
  const n = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), host: '127.0.0.1', port: 0, clusterKeyHex: undefined, mdns: false })
  await n.start()
  return n
}
const a = await node()
const b = await node()
let delivered: (() => void) | undefined
await b.handle(PROTOCOL, (stream) => {
  const framed = new FramedStream(stream, 1 << 24)
  void (async () => { for (;;) { if (await framed.next() === undefined) return; delivered?.() } })()
})
const sender = new FramedStream(await a.dialProtocol(b.getMultiaddrs()[0]!, PROTOCOL), 1 << 24)
// (1, 1024) f32: one token's hidden state of the bench model
const frame = encodeActivationFrame({ type: 'decode', requestId: asRequestId('bench'), planId: asPlanId('0'.repeat(64)), start: 0, count: 1, last: false, dtype: DType.F32, nEmbd: 1024, hidden: new Float32Array(1024) })

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1]!

async function measure (idleMs: number): Promise<{ sendUs: number, deliveredUs: number }> {
  const send: number[] = []
  const total: number[] = []
  for (let i = 0; i < COUNT; i++) {
    if (idleMs > 0) await sleep(idleMs)
    const got = new Promise<void>((resolve) => { delivered = resolve })
    const t0 = performance.now()
    await sender.send(frame)
    send.push(performance.now() - t0)
    await got
    total.push(performance.now() - t0)
  }
  // the first third warms the JIT
  const keep = (xs: number[]): number[] => xs.slice(Math.floor(COUNT / 3))
  return { sendUs: median(keep(send)) * 1000, deliveredUs: median(keep(total)) * 1000 }
}

try {
  await measure(0)
  const warm = await measure(0)
  const idle = await measure(IDLE_MS)
  console.log(`4 KiB frame over libp2p (TCP + Noise + Yamux) on loopback, ${COUNT} frames each, medians:`)
  console.log(`  back to back:      send() ${warm.sendUs.toFixed(0)} µs, send → delivered ${warm.deliveredUs.toFixed(0)} µs`)
  console.log(`  after ${IDLE_MS} ms idle:  send() ${idle.sendUs.toFixed(0)} µs, send → delivered ${idle.deliveredUs.toFixed(0)} µs`)
  console.log(`  ratio idle / warm: send ${(idle.sendUs / warm.sendUs).toFixed(2)}×, delivered ${(idle.deliveredUs / warm.deliveredUs).toFixed(2)}×`)
} finally {
  await a.stop()
  await b.stop()
}
