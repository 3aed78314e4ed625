import { execFileSync, execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import type { ClusterStateJson } from '../../../src/shared/cluster-state.js'

const run = promisify(execFile)

/**
 * A private L2 network made of network namespaces, created by the test and deleted afterwards:
 * one "switch" namespace holding a bridge, and one namespace per node joined to it by a veth pair.
 * Addresses 10.77.0.<10+i>/24 exist only inside these namespaces; the root namespace is not touched.
 * With `splitAt` = s, nodes [0, s) sit on bridge br0 and nodes [s, size) on br1, one subnet joined by a
 * veth "trunk" between the bridges: `setTrunk(false)` cuts the network in two (a partition), `true` heals it.
 */
export class NetnsLab {
  readonly id = randomBytes(3).toString('hex')
  readonly switchNs = `exo${this.id}sw`
  readonly nodes: Array<{ ns: string, ip: string, switchPort: string }> = []

  constructor (readonly size: number, readonly options: { splitAt?: number } = {}) {
    for (let i = 1; i <= size; i++) this.nodes.push({ ns: `exo${this.id}n${i}`, ip: `10.77.0.${10 + i}`, switchPort: `p${i}` })
  }

  static ip (...args: string[]): void {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  }

  up (): void {
    NetnsLab.ip('netns', 'add', this.switchNs)
    NetnsLab.ip('-n', this.switchNs, 'link', 'set', 'lo', 'up')
    NetnsLab.ip('-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge')
    NetnsLab.ip('-n', this.switchNs, 'link', 'set', 'br0', 'up')
    if (this.options.splitAt !== undefined) {
      NetnsLab.ip('-n', this.switchNs, 'link', 'add', 'br1', 'type', 'bridge')
      NetnsLab.ip('-n', this.switchNs, 'link', 'set', 'br1', 'up')
      NetnsLab.ip('-n', this.switchNs, 'link', 'add', 'trunk0', 'type', 'veth', 'peer', 'name', 'trunk1')
      NetnsLab.ip('-n', this.switchNs, 'link', 'set', 'trunk0', 'master', 'br0')
      NetnsLab.ip('-n', this.switchNs, 'link', 'set', 'trunk1', 'master', 'br1')
      this.setTrunk(true)
    }
    for (const [i, n] of this.nodes.entries()) {
      NetnsLab.ip('netns', 'add', n.ns)
      NetnsLab.ip('link', 'add', 'name', n.switchPort, 'netns', this.switchNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.ns)
      NetnsLab.ip('-n', this.switchNs, 'link', 'set', n.switchPort, 'master', i < (this.options.splitAt ?? this.size) ? 'br0' : 'br1')
      NetnsLab.ip('-n', this.switchNs, 'link', 'set', n.switchPort, 'up')
      NetnsLab.ip('-n', n.ns, 'link', 'set', 'lo', 'up')
      NetnsLab.ip('-n', n.ns, 'addr', 'add', `${n.ip}/24`, 'dev', 'eth0')
      NetnsLab.ip('-n', n.ns, 'link', 'set', 'eth0', 'up')
      NetnsLab.ip('-n', n.ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0') // mDNS needs a multicast route
    }
  }

  /** Deletes every namespace of this lab (their veths go with them). Never throws. */
  down (): void {
    for (const ns of [...this.nodes.map((n) => n.ns), this.switchNs]) {
      try { NetnsLab.ip('netns', 'del', ns) } catch { /* already gone */ }
    }
  }

  /** Takes node i's switch port down (partition) or up (heal). */
  setLink (i: number, up: boolean): void {
    const n = this.nodes[i]
    if (n === undefined) throw new Error(`no node ${i}`)
    NetnsLab.ip('-n', this.switchNs, 'link', 'set', n.switchPort, up ? 'up' : 'down')
  }

  /** Takes the trunk between the two bridges down (a partition: nodes [0, splitAt) | [splitAt, size)) or up (heal). */
  setTrunk (up: boolean): void {
    if (this.options.splitAt === undefined) throw new Error('this lab has one bridge (no splitAt)')
    // both ends in one `ip` call: the cut (or heal) happens at one moment, when the call returns
    const state = up ? 'up' : 'down'
    execFileSync('ip', ['-n', this.switchNs, '-batch', '-'], { input: `link set trunk0 ${state}\nlink set trunk1 ${state}\n`, stdio: ['pipe', 'ignore', 'pipe'] })
  }

  /** ['ip', 'netns', 'exec', ns] to prefix a command. */
  exec (i: number): string[] {
    const n = this.nodes[i]
    if (n === undefined) throw new Error(`no node ${i}`)
    return ['ip', 'netns', 'exec', n.ns]
  }

  /** GET a node's /cluster/state from inside its namespace (the root namespace cannot reach it). */
  async clusterState (i: number, httpUrl: string): Promise<ClusterStateJson> {
    return JSON.parse((await this.http(i, `${httpUrl}/cluster/state`, { timeoutMs: 3000 })).body) as ClusterStateJson
  }

  /** GET several nodes' /cluster/state with one curl from inside node i's namespace (one process, not one per node). */
  async clusterStates (i: number, httpUrls: string[]): Promise<ClusterStateJson[]> {
    const [cmd, ...args] = [...this.exec(i), 'curl', '-s', '--max-time', '3', '-w', '\n@@%{http_code}@@\n', ...httpUrls.map((u) => `${u}/cluster/state`)]
    const { stdout } = await run(cmd ?? 'ip', args, { timeout: 5000, maxBuffer: 16 << 20 })
    const parts = stdout.split(/\n@@\d+@@\n/).slice(0, httpUrls.length)
    if (parts.length !== httpUrls.length) throw new Error(`${parts.length} of ${httpUrls.length} states`)
    return parts.map((p) => JSON.parse(p) as ClusterStateJson)
  }

  /** An HTTP request (curl) from inside node i's namespace: status and body; POST when `json` is given. */
  async http (i: number, url: string, o: { json?: unknown, timeoutMs?: number } = {}): Promise<{ status: number, body: string }> {
    const secs = String((o.timeoutMs ?? 3000) / 1000)
    const post = o.json === undefined ? [] : ['-X', 'POST', '-H', 'content-type: application/json', '--data-binary', JSON.stringify(o.json)]
    const [cmd, ...args] = [...this.exec(i), 'curl', '-s', '--max-time', secs, '-w', '\n%{http_code}', ...post, url]
    const { stdout } = await run(cmd ?? 'ip', args, { timeout: (o.timeoutMs ?? 3000) + 2000, maxBuffer: 16 << 20 })
    const cut = stdout.lastIndexOf('\n')
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) }
  }
}

export function isRoot (): boolean {
  return process.getuid?.() === 0
}
