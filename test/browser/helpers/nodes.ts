// Real exo-p2p node processes on 127.0.0.1 for the browser tests: `exo-p2p start ...` (test/helpers/exo-cli.ts).
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ClusterStateJson } from '../../../src/shared/cluster-state.js'
import { exoCli } from '../../helpers/exo-cli.js'

export interface NodeProc {
  name: string
  httpUrl: string
  p2pPort: number
  proc: ChildProcess
  /** everything the process wrote to stdout and stderr so far */
  log: () => string
  state: () => Promise<ClusterStateJson>
  /** SIGKILL: no leave message, the others must detect the death */
  kill: () => Promise<void>
  /** SIGTERM, then cleanup of its data dir */
  stop: () => Promise<void>
}

export async function freePort (): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as AddressInfo).port
  await new Promise((resolve) => srv.close(resolve))
  return port
}

export interface StartOptions {
  name: string
  peers?: string[]
  models?: string[]
  apiKey?: string
  extraArgs?: string[]
}

/** Starts a node and waits until its GET /cluster/state answers (≤ 60 s: tsx compiles on first start). */
export async function startNode (opts: StartOptions): Promise<NodeProc> {
  const httpPort = await freePort()
  const p2pPort = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), `exo-dash-${opts.name}-`))
  const entry = [exoCli(), 'start']
  const args = [...entry, '--no-mdns', '--host', '127.0.0.1', '--http-port', String(httpPort),
    '--p2p-port', String(p2pPort), '--data-dir', dataDir, '--name', opts.name,
    ...(opts.peers ?? []).flatMap((p) => ['--peer', p]),
    ...(opts.models ?? []).flatMap((m) => ['--model', m]),
    ...(opts.apiKey !== undefined ? ['--api-key', opts.apiKey] : []),
    ...(opts.extraArgs ?? [])]
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EXO_P2P_LOG_LEVEL: 'debug' } })
  let out = ''
  proc.stdout?.on('data', (b: Buffer) => { out += b.toString() })
  proc.stderr?.on('data', (b: Buffer) => { out += b.toString() })
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const httpUrl = `http://127.0.0.1:${httpPort}`
  const headers: Record<string, string> = opts.apiKey !== undefined ? { authorization: `Bearer ${opts.apiKey}` } : {}
  const node: NodeProc = {
    name: opts.name,
    httpUrl,
    p2pPort,
    proc,
    log: () => out,
    state: async () => {
      const res = await fetch(`${httpUrl}/cluster/state`, { headers, signal: AbortSignal.timeout(3000) })
      if (!res.ok) throw new Error(`GET /cluster/state: ${res.status}`)
      return await res.json() as ClusterStateJson
    },
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
      await exited
      rmSync(dataDir, { recursive: true, force: true })
    },
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM')
        const t = setTimeout(() => proc.kill('SIGKILL'), 8000)
        await exited
        clearTimeout(t)
      }
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
  const deadline = Date.now() + 60_000
  while (true) {
    if (proc.exitCode !== null) throw new Error(`node ${opts.name} exited with ${proc.exitCode}:\n${out.slice(-3000)}`)
    try { await node.state(); return node } catch {}
    if (Date.now() > deadline) { await node.kill(); throw new Error(`node ${opts.name} did not serve /cluster/state in 60 s:\n${out.slice(-3000)}`) }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

/** Polls until `check` returns a value (not undefined) or throws after `timeoutMs`. */
export async function waitFor<T> (what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastErr: unknown
  while (Date.now() < deadline) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (err) { lastErr = err }
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr !== undefined ? `: ${String(lastErr)}` : ''}`)
}
