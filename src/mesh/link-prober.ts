import { byteStream, echo } from '@libp2p/utils'
import type { ByteStream } from '@libp2p/utils'
import type { PeerId, Stream } from '@libp2p/interface'
import type { Logger } from '../shared/log.js'
import { nextRttClassMs } from './membership/quantise.js'
import { ANNOUNCE_INTERVAL_MS, RTT_EWMA_ALPHA } from './membership/constants.js'
import type { LinkMeasurement } from './membership/announcement.js'
import type { MeshLibp2p } from './create-libp2p.js'

/** protocols/membership.md "Link probe": the responder echoes every byte back. */
export const LINK_PROBE_PROTOCOL = '/exo-p2p/link-probe/1.0.0'
export const RTT_PROBE_BYTES = 8
export const BANDWIDTH_PROBE_BYTES = 64 * 1024
export const BANDWIDTH_EVERY_ROUNDS = 30
export const PROBE_TIMEOUT_MS = 1500
const CONNECT_PROBE_DELAY_MS = 200

interface LinkState {
  stream?: ByteStream<Stream>
  busy: boolean
  rounds: number
  rttMs?: number
  rttClassMs?: number
  bandwidthBytesPerSec: number
}

/**
 * Measures RTT (every ANNOUNCE_INTERVAL_MS) and a bandwidth estimate (every BANDWIDTH_EVERY_ROUNDS rounds)
 * to every connected peer over one long-lived echo stream per peer, timed with performance.now().
 */
export class LinkProber {
  private readonly links = new Map<string, LinkState>()
  private timer: NodeJS.Timeout | undefined
  private readonly onDisconnect = (e: CustomEvent<PeerId>): void => { this.drop(e.detail.toString()) }
  private readonly onConnect = (): void => {
    // measure a new link soon instead of waiting up to a full round (identify runs first)
    setTimeout(() => { if (this.timer !== undefined) this.round() }, CONNECT_PROBE_DELAY_MS).unref()
  }

  /** onNewLink: called when a peer gets its first RTT sample (the node announces it early). */
  constructor (private readonly libp2p: MeshLibp2p, private readonly log: Logger, private readonly onNewLink: () => void = () => {}) {}

  async start (): Promise<void> {
    await this.libp2p.handle(LINK_PROBE_PROTOCOL, (stream) => {
      echo(stream).catch(() => { stream.abort(new Error('link probe echo failed')) })
    }, { maxInboundStreams: 8 })
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.libp2p.addEventListener('peer:connect', this.onConnect)
    this.timer = setInterval(() => { this.round() }, ANNOUNCE_INTERVAL_MS)
    this.timer.unref()
    this.round()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    this.libp2p.removeEventListener('peer:connect', this.onConnect)
    for (const id of [...this.links.keys()]) this.drop(id)
    await this.libp2p.unhandle(LINK_PROBE_PROTOCOL)
  }

  /** Current measurements to peers that have at least one RTT sample. */
  measurements (): LinkMeasurement[] {
    const out: LinkMeasurement[] = []
    for (const [peerId, s] of this.links) {
      if (s.rttMs === undefined || s.rttClassMs === undefined) continue
      out.push({ peerId, rttMs: Math.round(s.rttMs * 1000) / 1000, rttClassMs: s.rttClassMs, bandwidthBytesPerSec: Math.round(s.bandwidthBytesPerSec) })
    }
    return out.sort((a, b) => (a.peerId < b.peerId ? -1 : 1))
  }

  private drop (peerId: string): void {
    const s = this.links.get(peerId)
    this.links.delete(peerId)
    s?.stream?.unwrap().abort(new Error('peer disconnected'))
  }

  private round (): void {
    for (const peer of this.libp2p.getPeers()) {
      const id = peer.toString()
      let s = this.links.get(id)
      if (s === undefined) { s = { busy: false, rounds: 0, bandwidthBytesPerSec: 0 }; this.links.set(id, s) }
      if (s.busy) continue
      s.busy = true
      const state = s
      this.probe(peer, state)
        .catch((err: Error) => {
          this.log.debug({ peer: id, err: err.message }, 'link probe failed')
          state.stream?.unwrap().abort(err)
          state.stream = undefined
        })
        .finally(() => { state.busy = false })
    }
  }

  private async probe (peer: PeerId, s: LinkState): Promise<void> {
    const signal = AbortSignal.timeout(PROBE_TIMEOUT_MS)
    if (s.stream === undefined) {
      const raw = await this.libp2p.dialProtocol(peer, LINK_PROBE_PROTOCOL, { signal })
      s.stream = byteStream(raw, { maxBufferSize: 2 * BANDWIDTH_PROBE_BYTES })
      await this.echoOnce(s.stream, RTT_PROBE_BYTES, signal) // warm-up: the first exchange carries protocol negotiation
    }
    const rtt = await this.echoOnce(s.stream, RTT_PROBE_BYTES, signal)
    const first = s.rttMs === undefined
    s.rttMs = s.rttMs === undefined ? rtt : s.rttMs + RTT_EWMA_ALPHA * (rtt - s.rttMs)
    s.rttClassMs = nextRttClassMs(s.rttClassMs, s.rttMs)
    if (first) this.onNewLink()
    if (s.rounds++ % BANDWIDTH_EVERY_ROUNDS === 0) {
      const t = await this.echoOnce(s.stream, BANDWIDTH_PROBE_BYTES, AbortSignal.timeout(PROBE_TIMEOUT_MS * 4))
      const transferMs = Math.max(t - rtt, 0.05)
      s.bandwidthBytesPerSec = (2 * BANDWIDTH_PROBE_BYTES) / (transferMs / 1000)
    }
  }

  /** Sends n bytes, waits for their echo; returns the elapsed ms. */
  private async echoOnce (stream: ByteStream<Stream>, n: number, signal: AbortSignal): Promise<number> {
    const payload = new Uint8Array(n)
    const t0 = performance.now()
    await stream.write(payload, { signal })
    await stream.read({ bytes: n, signal })
    return performance.now() - t0
  }
}
