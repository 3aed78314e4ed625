import '../../src/shared/polyfills.js'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import type { Libp2p } from '@libp2p/interface'
import { createLibp2p } from 'libp2p'

/** A bare libp2p node on 127.0.0.1 (tcp + noise + yamux with the 1 MiB window the activations spec recommends). */
export async function startNode (): Promise<Libp2p> {
  return await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: 1 << 20 } })]
  })
}

/** Two started nodes, `a` connected to `b`. Stop them with `stopPair`. */
export async function startPair (): Promise<{ a: Libp2p, b: Libp2p }> {
  const [a, b] = await Promise.all([startNode(), startNode()])
  await a.dial(b.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) })
  return { a, b }
}

export async function stopPair (p: { a: Libp2p, b: Libp2p }): Promise<void> {
  await Promise.all([p.a.stop(), p.b.stop()])
}
