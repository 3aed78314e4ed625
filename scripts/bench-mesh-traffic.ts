/**
 * Measures what the mesh costs on the wire: N nodes (default 4) in network namespaces joined by --peer,
 * then eth0 byte counters of every namespace over WINDOW seconds (gossip + link probes + libp2p
 * keep-alives), next to the membership payload counters of /metrics. Root only; cleans up after itself.
 *   node --import tsx scripts/bench-mesh-traffic.ts [nodes=4] [windowSeconds=20]
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NetnsLab } from '../test/lab/helpers/netns-lab.js'
import { agreement, startMeshNode, stopProcess, waitFor } from '../test/integration/helpers/mesh-node-process.js'
import type { MeshNodeProcess } from '../test/integration/helpers/mesh-node-process.js'

const n = Number(process.argv[2] ?? 4)
const windowS = Number(process.argv[3] ?? 20)
const lab = new NetnsLab(n)
const dir = mkdtempSync(join(tmpdir(), 'exo-traffic-'))
const nodes: MeshNodeProcess[] = []

function ethBytes (i: number): { rx: number, tx: number } {
  const text = execFileSync('ip', [...lab.exec(i).slice(1), 'cat', '/proc/net/dev'], { encoding: 'utf8' })
  const line = text.split('\n').find((l) => l.trim().startsWith('eth0:')) ?? ''
  const f = line.split(':')[1]?.trim().split(/\s+/).map(Number) ?? []
  return { rx: f[0] ?? 0, tx: f[8] ?? 0 }
}

function payload (i: number): { pub: number, recv: number } {
  const text = execFileSync('ip', [...lab.exec(i).slice(1), 'curl', '-s', `${nodes[i]?.httpUrl ?? ''}/metrics`], { encoding: 'utf8' })
  const get = (k: string): number => Number(new RegExp(`^${k} (\\S+)$`, 'm').exec(text)?.[1] ?? 0)
  return { pub: get('exo_p2p_gossip_bytes_published_total'), recv: get('exo_p2p_gossip_bytes_received_total') }
}

try {
  lab.up()
  const seed = `/ip4/${lab.nodes[0]?.ip ?? ''}/tcp/4001`
  nodes.push(...await Promise.all(lab.nodes.map(async (x, i) => await startMeshNode({
    name: `t${i + 1}`, dataDir: join(dir, `n${i}`), host: x.ip, p2pPort: 4001, peers: i === 0 ? [] : [seed], prefix: lab.exec(i)
  }, 90_000))))
  await waitFor('one view', async () => agreement(await Promise.all(nodes.map(async (x, i) => await lab.clusterState(i, x.httpUrl))), nodes.map((x) => x.peerId)), 30_000, 250)
  await new Promise((resolve) => setTimeout(resolve, 3000))
  const b0 = nodes.map((_, i) => ethBytes(i))
  const p0 = nodes.map((_, i) => payload(i))
  await new Promise((resolve) => setTimeout(resolve, windowS * 1000))
  const b1 = nodes.map((_, i) => ethBytes(i))
  const p1 = nodes.map((_, i) => payload(i))
  console.log(`${n} nodes, ${windowS} s window — bytes/s per node`)
  console.log('node  wire tx  wire rx  gossip payload published  gossip payload received')
  for (let i = 0; i < n; i++) {
    const r = (a: number, b: number): string => ((b - a) / windowS).toFixed(0).padStart(7)
    console.log(`t${i + 1}   ${r(b0[i]?.tx ?? 0, b1[i]?.tx ?? 0)}  ${r(b0[i]?.rx ?? 0, b1[i]?.rx ?? 0)}  ${r(p0[i]?.pub ?? 0, p1[i]?.pub ?? 0)}                   ${r(p0[i]?.recv ?? 0, p1[i]?.recv ?? 0)}`)
  }
} finally {
  await Promise.all(nodes.map(async (x) => { await stopProcess(x, 'SIGKILL') }))
  lab.down()
  rmSync(dir, { recursive: true, force: true })
}
