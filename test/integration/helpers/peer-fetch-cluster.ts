/**
 * The cluster of the peer-fetch integration tests: one generated model, node processes started with
 * `--model` (a path for holders, the id for fetchers), and what the tests measure on them.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ClusterStateJson } from '../../../src/shared/cluster-state.js'
import { modelIdOfPath } from '../../../src/node/model-registry.js'
import { startMeshNode, stopProcess } from './mesh-node-process.js'
import type { MeshNodeProcess, StartOptions } from './mesh-node-process.js'
import { generatedModel } from '../../model/helpers/generated-models.js'

// 6 layers of ~2.2 MB (Q8_0), embeddings and output ~21 MB each: 4 MiB chunks, a stage spans chunks of its own
export const MODEL_PATH = generatedModel('q8_0', { layers: 6, embd: 512, heads: 8, kvHeads: 8, ff: 1408, seed: 31 })
export const MODEL = modelIdOfPath(MODEL_PATH)
export const CHUNK = 4 << 20
export const PROMPT = 'Once upon a time'

/** node processes started by start(), stopped by stopAll() (tests may stop them earlier with splice) */
export const running: MeshNodeProcess[] = []
const dirs: string[] = []

export async function start (name: string, model: string, budgetMiB: number, peers: string[], more: Partial<StartOptions> = {}): Promise<{ node: MeshNodeProcess, dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), `exo-fetch-${name}-`))
  dirs.push(dataDir)
  const node = await startMeshNode({ name, dataDir, peers, ...more, extraArgs: ['--model', model, '--memory-budget', String(budgetMiB), '--log-level', 'info', ...(more.extraArgs ?? [])] })
  running.push(node)
  return { node, dataDir }
}

/** Stops every started node and removes their data dirs (each test file registers it with after()). */
export async function stopAll (): Promise<void> {
  await Promise.all(running.map(async (n) => { await stopProcess(n) }))
  if (process.env.EXO_TEST_DUMP_LOGS !== undefined) for (const n of running) process.stderr.write(`\n===== ${n.name}\n${n.stderr}`)
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
}

export function agreedReadyPlan (states: ClusterStateJson[], stages: number): NonNullable<ClusterStateJson['plan']> | undefined {
  const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : undefined))
  if (ids.size !== 1 || ids.has(undefined)) return undefined
  const p = states[0]!.plan!
  return p.stages.length === stages ? p : undefined
}

export async function complete (node: MeshNodeProcess, maxTokens: number, model: string = MODEL): Promise<string> {
  const res = await fetch(`${node.httpUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt: PROMPT, max_tokens: maxTokens, temperature: 0 }),
    signal: AbortSignal.timeout(30_000)
  })
  const body = await res.json() as { choices?: Array<{ text: string }> }
  assert.equal(res.status, 200, `${node.name}: ${JSON.stringify(body)}`)
  return body.choices![0]!.text
}

/** st_blocks × 512: bytes the sparse copy really takes on disk */
export function allocatedBytes (path: string): number {
  const [blocks, size] = execFileSync('stat', ['-c', '%b %B', path]).toString().trim().split(' ').map(Number)
  return blocks! * size!
}
