import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { LocalInferenceService } from '../../../src/node/local-inference-service.js'
import { ggmlShardEngine } from '../../../src/node/ggml-shard-engine.js'
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

const SCRIPT = fileURLToPath(new URL('./api-node-process.ts', import.meta.url))

export async function startApiNode (): Promise<ApiNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'exo-api-node-'))
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  const line = await Promise.race([
    new Promise<string>((resolve) => { createInterface({ input: child.stdout! }).once('line', resolve) }),
    exited.then(() => { throw new Error(`node process exited with ${child.exitCode}`) }),
    new Promise<never>((_resolve, reject) => setTimeout(() => { reject(new Error('node did not start in 60 s')) }, 60_000).unref())
  ])
  const info = JSON.parse(line) as { httpUrl: string }
  const inference = new LocalInferenceService({ engine: ggmlShardEngine, threads: 1, nodeName: 'reference' })
  return {
    url: info.httpUrl,
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
