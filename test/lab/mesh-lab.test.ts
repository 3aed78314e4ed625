import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NetnsLab, isRoot } from './helpers/netns-lab.js'
import { REPO_ROOT, agreement, startMeshNode, stopProcess, waitFor } from '../integration/helpers/mesh-node-process.js'
import type { MeshNodeProcess } from '../integration/helpers/mesh-node-process.js'
import type { ClusterStateJson } from '../../src/shared/cluster-state.js'

const P2P_PORT = 4001
const RELAY_PORT = 7000
const RELAY_DELAY_MS = 10 // per direction → +20 ms RTT

describe('mesh in network namespaces (root)', { skip: isRoot() ? false : 'needs root for ip netns', timeout: 300_000 }, () => {
  const lab = new NetnsLab(3)
  const dir = mkdtempSync(join(tmpdir(), 'exo-mesh-lab-'))
  let nodes: MeshNodeProcess[] = []
  let relay: ChildProcess | undefined

  const states = async (): Promise<ClusterStateJson[]> => await Promise.all(nodes.map(async (n, i) => await lab.clusterState(i, n.httpUrl)))
  const agreed = async (idx: number[]): Promise<string | undefined> => {
    const sel = idx.map((i) => nodes[i]).filter((n): n is MeshNodeProcess => n !== undefined)
    const got = await Promise.all(idx.map(async (i) => await lab.clusterState(i, nodes[i]?.httpUrl ?? '')))
    return agreement(got, sel.map((n) => n.peerId))
  }
  const startNode = async (i: number, o: { mdns: boolean, peers?: string[] }): Promise<MeshNodeProcess> => await startMeshNode({
    name: `lab${i + 1}`, dataDir: join(dir, `n${i}`), host: lab.nodes[i]?.ip, p2pPort: P2P_PORT, mdns: o.mdns, peers: o.peers, prefix: lab.exec(i)
  }, 60_000)

  before(() => { lab.up() })

  after(async () => {
    relay?.kill('SIGKILL')
    await Promise.all(nodes.map(async (n) => { await stopProcess(n, 'SIGKILL') }))
    lab.down()
    rmSync(dir, { recursive: true, force: true })
  })

  it('3 nodes with mDNS and no --peer find each other', async (t) => {
    nodes = await Promise.all([0, 1, 2].map(async (i) => await startNode(i, { mdns: true })))
    const tReady = Date.now()
    const hash = await waitFor('one view of 3 over mDNS', async () => await agreed([0, 1, 2]), 20_000, 200)
    t.diagnostic(`namespaces + mDNS: same view ${hash.slice(0, 12)} ${Date.now() - tReady} ms after the last node was ready`)
  })

  it('a partition (link down) splits the view; healing restores one view hash', async (t) => {
    const before = (await states()).map((s) => s.viewHash)
    const t0 = Date.now()
    lab.setLink(2, false)
    await waitFor('the split', async () => {
      const a = await agreed([0, 1])
      const b = await agreed([2])
      return a !== undefined && b !== undefined && a !== b ? true : undefined
    }, 12_000, 200)
    t.diagnostic(`partition detected by both sides after ${Date.now() - t0} ms`)
    assert.notEqual((await agreed([0, 1])), before[0])
    const t1 = Date.now()
    lab.setLink(2, true)
    const healed = await waitFor('healing', async () => await agreed([0, 1, 2]), 30_000, 200)
    t.diagnostic(`healed: one view hash ${healed.slice(0, 12)} ${Date.now() - t1} ms after the link came back`)
  })

  it('a 20 ms delaying relay on one link shows up in everyone\'s RTT for that link (±25 %)', async (t) => {
    await Promise.all(nodes.map(async (n) => { await stopProcess(n, 'SIGTERM') }))
    nodes = []
    // lab2 first; lab1 reaches it only through the relay (running in lab1's namespace); lab3 dials both directly
    const n2 = await startNode(1, { mdns: false })
    const [cmd, ...args] = [...lab.exec(0), process.execPath, '--import', 'tsx', 'test/lab/helpers/delay-relay.ts',
      '127.0.0.1', String(RELAY_PORT), lab.nodes[1]?.ip ?? '', String(P2P_PORT), String(RELAY_DELAY_MS)]
    relay = spawn(cmd ?? 'ip', args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>((resolve, reject) => {
      relay?.stdout?.once('data', () => { resolve() })
      relay?.once('exit', (code) => { reject(new Error(`relay exited ${code}`)) })
    })
    const n1 = await startNode(0, { mdns: false, peers: [`/ip4/127.0.0.1/tcp/${RELAY_PORT}/p2p/${n2.peerId}`] })
    nodes = [n1, n2]
    await waitFor('lab1 and lab2 joined through the relay', async () => await agreed([0, 1]), 15_000, 200)
    const n3 = await startNode(2, { mdns: false, peers: [n1.p2pAddr, n2.p2pAddr] })
    nodes = [n1, n2, n3]
    await waitFor('one view of 3', async () => await agreed([0, 1, 2]), 15_000, 200)

    const ids = nodes.map((n) => n.peerId)
    const rttsOf = (s: ClusterStateJson, a: number, b: number): number | undefined => s.links.find((l) => l.from === ids[a] && l.to === ids[b])?.rttMs
    let report = ''
    await waitFor('the relayed link to show +20 ms in every view', async () => {
      const all = await states()
      const ok = all.every((s) => {
        const relayed = [rttsOf(s, 0, 1), rttsOf(s, 1, 0)]
        const direct = [rttsOf(s, 0, 2), rttsOf(s, 2, 0), rttsOf(s, 1, 2), rttsOf(s, 2, 1)]
        if ([...relayed, ...direct].some((x) => x === undefined)) return false
        const base = (direct as number[]).reduce((a, b) => a + b, 0) / direct.length
        report = `relayed ${relayed.map((x) => x?.toFixed(2)).join('/')} ms, direct ${direct.map((x) => x?.toFixed(2)).join('/')} ms`
        return (relayed as number[]).every((r) => r - base >= 20 * 0.75 && r - base <= 20 * 1.25)
      })
      return ok ? true : undefined
    }, 25_000, 500).catch((err: Error) => { throw new Error(`${err.message}; last: ${report}`) })
    t.diagnostic(`RTT as seen by all three: ${report}`)
  })
})
