import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { exoCli } from '../../helpers/exo-cli.js'
import type { ClusterStateJson } from '../../../src/shared/cluster-state.js'

/** A real `exo-p2p start` process for integration/lab tests. */
export interface MeshNodeProcess {
  name: string
  proc: ChildProcess
  peerId: string
  httpUrl: string
  p2pAddr: string
  stdout: string
  stderr: string
}

export interface StartOptions {
  name: string
  dataDir: string
  host?: string
  p2pPort?: number
  peers?: string[]
  clusterKey?: string
  mdns?: boolean
  /** wrap the command, e.g. ['ip', 'netns', 'exec', 'ns1'] */
  prefix?: string[]
  extraArgs?: string[]
  /** extra environment variables of the process */
  env?: Record<string, string>
}

export const REPO_ROOT = new URL('../../../', import.meta.url).pathname

/** A TCP port that was free a moment ago on host. */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port
      s.close(() => { resolve(port) })
    })
  })
}

export async function startMeshNode (o: StartOptions, timeoutMs = 40_000): Promise<MeshNodeProcess> {
  const args = [exoCli(), 'start', '--host', o.host ?? '127.0.0.1', '--http-port', '0',
    '--p2p-port', String(o.p2pPort ?? 0), '--data-dir', o.dataDir, '--name', o.name,
    ...(o.mdns === true ? [] : ['--no-mdns']),
    ...(o.peers ?? []).flatMap((p) => ['--peer', p]),
    ...(o.clusterKey !== undefined ? ['--cluster-key', o.clusterKey] : []),
    ...(o.extraArgs ?? [])]
  const [cmd, ...rest] = [...(o.prefix ?? []), process.execPath, ...args]
  const proc = spawn(cmd ?? process.execPath, rest, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...(o.env !== undefined ? { env: { ...process.env, ...o.env } } : {}) })
  const node: MeshNodeProcess = { name: o.name, proc, peerId: '', httpUrl: '', p2pAddr: '', stdout: '', stderr: '' }
  proc.stderr?.on('data', (d: Buffer) => { node.stderr += d.toString() })
  await new Promise<void>((resolve, reject) => {
    // a node that did not start is killed: nobody else holds its handle
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`${o.name} did not start in ${timeoutMs} ms:\n${node.stderr.slice(-2000)}`)) }, timeoutMs)
    proc.stdout?.on('data', (d: Buffer) => {
      node.stdout += d.toString()
      if (node.peerId === '' && node.stdout.includes('Press Ctrl-C')) {
        clearTimeout(timer)
        node.peerId = /peer id:\s+(\S+)/.exec(node.stdout)?.[1] ?? ''
        node.httpUrl = /HTTP API:\s+(\S+)/.exec(node.stdout)?.[1] ?? ''
        node.p2pAddr = /listening:\s+(\S+)/.exec(node.stdout)?.[1] ?? ''
        resolve()
      }
    })
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${o.name} exited with ${code}:\n${node.stderr.slice(-2000)}`)) })
  })
  return node
}

export async function clusterState (node: Pick<MeshNodeProcess, 'httpUrl'>): Promise<ClusterStateJson> {
  const res = await fetch(`${node.httpUrl}/cluster/state`, { signal: AbortSignal.timeout(5000) })
  return await res.json() as ClusterStateJson
}

export async function metrics (node: Pick<MeshNodeProcess, 'httpUrl'>): Promise<Map<string, number>> {
  const res = await fetch(`${node.httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })
  const out = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    const m = /^(\S+) (\S+)$/.exec(line)
    if (m?.[1] !== undefined && !line.startsWith('#')) out.set(m[1], Number(m[2]))
  }
  return out
}

/** Polls fn until it returns a value !== undefined; throws with the last error after timeoutMs. */
export async function waitFor<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (err) { last = err }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last !== undefined ? `: ${String(last)}` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** The common view hash when all nodes see exactly `peerIds` with full links between them, else undefined. */
export async function agreedView (nodes: MeshNodeProcess[], peerIds: string[]): Promise<string | undefined> {
  return agreement(await Promise.all(nodes.map(clusterState)), peerIds)
}

/** As agreedView, over states already fetched. */
export function agreement (states: ClusterStateJson[], peerIds: string[]): string | undefined {
  const want = [...peerIds].sort().join(',')
  for (const s of states) {
    if (s.members.map((m) => m.peerId).join(',') !== want) return undefined
    for (const id of peerIds) {
      if (s.links.filter((l) => l.from === id).length !== peerIds.length - 1) return undefined
    }
  }
  const hashes = new Set(states.map((s) => s.viewHash))
  return hashes.size === 1 ? states[0]?.viewHash : undefined
}

export async function stopProcess (node: MeshNodeProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 8000): Promise<void> {
  if (node.proc.exitCode !== null || node.proc.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { node.proc.once('exit', () => { resolve() }) })
  node.proc.kill(signal)
  const t = setTimeout(() => { node.proc.kill('SIGKILL') }, timeoutMs)
  await exited
  clearTimeout(t)
}
