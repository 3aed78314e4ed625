import '../shared/polyfills.js'
import { createHash } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { mdns } from '@libp2p/mdns'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Ping } from '@libp2p/ping'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { GOSSIP_HEARTBEAT_MS, MAX_RPC_BYTES, SCORE_THRESHOLDS, membershipScoreParams } from './gossip-scoring.js'
import { bannedPeersGater } from './peer-bans.js'
import type { PeerBans } from './peer-bans.js'

export type MeshServices = {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
} // a type alias (not an interface) so it satisfies libp2p's ServiceMap index signature

export type MeshLibp2p = Libp2p<MeshServices>

export interface MeshLibp2pInit {
  privateKey: PrivateKey
  /** IPv4 address to listen on */
  host: string
  /** 0 = any free port */
  port: number
  /** 64 hex digits, or undefined for an open mesh */
  clusterKeyHex: string | undefined
  mdns: boolean
  /** peers refused in both directions (PeerGuard fills it); none when absent */
  bans?: PeerBans
}

export const MDNS_SERVICE_TAG = '_exo-p2p._udp.local'
export const MDNS_INTERVAL_MS = 2000
/** Yamux stream window cap: keeps token frames from queueing behind bulk data (p2p-probe §5). */
export const YAMUX_MAX_WINDOW_BYTES = 1 << 20

/** Noise prologue of protocols/membership.md "Cluster key": SHA-256("exo-p2p/cluster-key/v1" ‖ key). */
export function clusterPrologue (clusterKeyHex: string | undefined): Uint8Array {
  if (clusterKeyHex === undefined) return new Uint8Array(0)
  return new Uint8Array(createHash('sha256').update('exo-p2p/cluster-key/v1').update(Buffer.from(clusterKeyHex, 'hex')).digest())
}

/**
 * libp2p with TCP + Noise (cluster key in the prologue) + Yamux (window ≤ 1 MiB), identify, ping,
 * gossipsub (StrictSign, peer scoring of protocols/membership.md "Peer scoring") and optionally mDNS. Not started. `@libp2p/noise`/`@libp2p/yamux` replace the
 * `@chainsafe` builds (same code) because the latter pin uint8arraylist@2 and break `tsc`.
 */
export async function createMeshLibp2p (init: MeshLibp2pInit): Promise<MeshLibp2p> {
  return await createLibp2p({
    start: false,
    privateKey: init.privateKey,
    addresses: { listen: [`/ip4/${init.host}/tcp/${init.port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise({ prologueBytes: clusterPrologue(init.clusterKeyHex) })],
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: YAMUX_MAX_WINDOW_BYTES } })],
    ...(init.bans !== undefined ? { connectionGater: bannedPeersGater(init.bans, () => performance.now()) } : {}),
    peerDiscovery: init.mdns ? [mdns({ interval: MDNS_INTERVAL_MS, serviceTag: MDNS_SERVICE_TAG })] : [],
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        globalSignaturePolicy: 'StrictSign',
        heartbeatInterval: GOSSIP_HEARTBEAT_MS,
        scoreParams: membershipScoreParams(),
        scoreThresholds: SCORE_THRESHOLDS,
        maxInboundDataLength: MAX_RPC_BYTES
      })
    }
  })
}
