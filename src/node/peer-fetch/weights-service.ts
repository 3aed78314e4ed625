import { peerIdFromString } from '@libp2p/peer-id'
import type { Libp2p, Stream } from '@libp2p/interface'
import type { Logger } from '../../shared/log.js'
import { BulkServer, WEIGHTS_PROTOCOLS, createWeightsHandler } from '../../protocols/weights/index.js'
import type { WeightsHandlerOptions, WeightsServeStats, WeightsSource } from '../../protocols/weights/index.js'

/** A node's holder side of protocols/weights.md: both protocol ids, the bulk listener of 1.1.0. */
export interface WeightsService {
  stats: WeightsServeStats
  /** unhandles both ids and closes the bulk listener (and every transfer on it) */
  stop: () => Promise<void>
}

/**
 * Serves `source` on `/exo-p2p/weights/1.1.0` and `1.0.0`; bulk connections are accepted on `host`
 * (the node's listen address; port from the system) — opened on the first bulk request.
 */
export async function handleWeights (libp2p: Libp2p, source: WeightsSource, options: { host: string, pace?: WeightsHandlerOptions['pace'], log?: Logger }): Promise<WeightsService> {
  const handler = createWeightsHandler(source, {
    bulk: new BulkServer(options.host, 0, options.log),
    ...(options.pace !== undefined ? { pace: options.pace } : {}),
    ...(options.log !== undefined ? { log: options.log } : {})
  })
  await libp2p.handle(WEIGHTS_PROTOCOLS, handler, { maxInboundStreams: 16, maxOutboundStreams: 16 })
  return {
    stats: handler.stats,
    stop: async () => {
      await libp2p.unhandle(WEIGHTS_PROTOCOLS).catch(() => {})
      await handler.close()
    }
  }
}

/** How a fetcher reaches holders: weights streams (1.1.0 preferred) and the IP the connection to each reached. */
export function weightsDialer (libp2p: Libp2p): { dial: (peerId: string, signal: AbortSignal) => Promise<Stream>, bulkHost: (peerId: string) => string | undefined } {
  return {
    dial: async (peerId, signal) => await libp2p.dialProtocol(peerIdFromString(peerId), WEIGHTS_PROTOCOLS, { signal }),
    bulkHost: (peerId) => {
      for (const c of libp2p.getConnections(peerIdFromString(peerId))) {
        const host = directHost(c.remoteAddr.toString())
        if (host !== undefined) return host
      }
      return undefined
    }
  }
}

/** The IP of a direct TCP multiaddr (`/ip4/A/tcp/P…`, `/ip6/A/tcp/P…`); undefined when relayed or another transport. */
export function directHost (addr: string): string | undefined {
  if (addr.includes('/p2p-circuit')) return undefined
  const m = /^\/ip[46]\/([^/]+)\/tcp\/\d+/.exec(addr)
  return m?.[1]
}
