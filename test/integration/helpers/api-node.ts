import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LocalInferenceService } from '../../../src/node/local-inference-service.js'
import { ggmlShardEngine } from '../../../src/node/ggml-shard-engine.js'
import { exoCli } from '../../helpers/exo-cli.js'
import type { ChildProcess } from 'node:child_process'
import type { InferenceService } from '../../../src/shared/inference.js'

/** A node in its own process, plus an in-test engine to compare against (the engine's own output). */
export interface ApiNode {
  url: string
  /** the same engine and model, in this process: the reference for greedy output */
  inference: InferenceService
  child: ChildProcess
  close: () => Promise<void>
}


/** `exo-p2p start` on 127.0.0.1 with free ports, mDNS off, a fresh data dir; extra flags appended. */
export async function startApiNode (extraArgs: string[] = []): Promise<ApiNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'exo-api-node-'))
  const args = [exoCli(), 'start', '--host', '127.0.0.1', '--http-port', '0', '--p2p-port', '0', '--no-mdns', '--data-dir', dataDir, '--name', 'api-test-node', '--log-level', 'warn', ...extraArgs]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  let out = ''
  const url = await Promise.race([
    new Promise<string>((resolve) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        const m = /HTTP API:\s+(\S+)/.exec(out)
        if (m !== null && out.includes('Press Ctrl-C')) resolve(m[1]!)
      })
    }),
    exited.then(() => { throw new Error(`node process exited with ${child.exitCode}: ${out}`) }),
    new Promise<never>((_resolve, reject) => setTimeout(() => { reject(new Error('node did not start in 60 s')) }, 60_000).unref())
  ])
  const inference = new LocalInferenceService({ engine: ggmlShardEngine, threads: 1, nodeName: 'reference' })
  return {
    url,
    inference,
    child,
    close: async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())])
      if (child.exitCode === null) child.kill('SIGKILL')
      await inference.dispose()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
