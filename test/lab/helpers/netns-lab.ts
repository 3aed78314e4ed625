import { execFileSync, execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import type { ClusterStateJson } from '../../../src/shared/cluster-state.js'

const run = promisify(execFile)

/**
 * A private L2 network made of network namespaces, created by the test and deleted afterwards:
 * one "switch" namespace holding a bridge, and one namespace per node joined to it by a veth pair.
 * Addresses 10.77.0.<10+i>/24 exist only inside these namespaces; the root namespace is not touched.
 */
export class NetnsLab {
  readonly id = randomBytes(3).toString('hex')
  readonly switchNs = `exo${this.id}sw`
  readonly nodes: Array<{ ns: string, ip: string, switchPort: string }> = []

  constructor (readonly size: number) {
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
    for (const n of this.nodes) {
      NetnsLab.ip('netns', 'add', n.ns)
      NetnsLab.ip('link', 'add', 'name', n.switchPort, 'netns', this.switchNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.ns)
      NetnsLab.ip('-n', this.switchNs, 'link', 'set', n.switchPort, 'master', 'br0')
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

  /** ['ip', 'netns', 'exec', ns] to prefix a command. */
  exec (i: number): string[] {
    const n = this.nodes[i]
    if (n === undefined) throw new Error(`no node ${i}`)
    return ['ip', 'netns', 'exec', n.ns]
  }

  /** GET a node's /cluster/state from inside its namespace (the root namespace cannot reach it). */
  async clusterState (i: number, httpUrl: string): Promise<ClusterStateJson> {
    const [cmd, ...args] = [...this.exec(i), 'curl', '-s', '--max-time', '3', `${httpUrl}/cluster/state`]
    const { stdout } = await run(cmd ?? 'ip', args, { timeout: 5000 })
    return JSON.parse(stdout) as ClusterStateJson
  }
}

export function isRoot (): boolean {
  return process.getuid?.() === 0
}
