/**
 * Issue 10's integration check: a generated mixture-of-experts model (qwen3moe) and a generated gemma3 (sliding
 * window layers), each split over three real `exo-p2p start` processes by their memory budgets: every node's HTTP
 * port returns llama.cpp's greedy text.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { LlamaLogLevel, getLlama } from 'node-llama-cpp'
import type { Token } from 'node-llama-cpp'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterState, startMeshNode, stopProcess, waitFor } from './helpers/mesh-node-process.js'
import { budgetForSplitMiB } from './helpers/split-budget.js'
import { generatedModel } from '../model/helpers/generated-models.js'
import { referenceGreedy } from '../model/helpers/completion-reference.js'
import { modelIdOfPath } from '../../src/node/model-registry.js'
import type { ClusterStateJson } from '../../src/shared/cluster-state.js'
import type { MeshNodeProcess } from './helpers/mesh-node-process.js'

const PROMPT = 'Once upon a time'
const dirs: string[] = []
let running: MeshNodeProcess[] = []

after(async () => {
  await Promise.all(running.map(async (n) => { await stopProcess(n) }))
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function agreedPlan (states: ClusterStateJson[]): NonNullable<ClusterStateJson['plan']> | undefined {
  const ids = new Set(states.map((s) => s.plan?.ready === true ? s.plan.id : undefined))
  if (ids.size !== 1 || ids.has(undefined)) return undefined
  return states[0]!.plan ?? undefined
}

async function complete (node: MeshNodeProcess, model: string): Promise<string> {
  const res = await fetch(`${node.httpUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt: PROMPT, max_tokens: 30, temperature: 0 }),
    signal: AbortSignal.timeout(60_000)
  })
  const body = await res.json() as { choices?: Array<{ text: string }> }
  assert.equal(res.status, 200, `${node.name}: ${JSON.stringify(body)}`)
  return body.choices![0]!.text
}

/**
 * llama.cpp's greedy tokens (node-llama-cpp LlamaCompletion), detokenized after the prompt's tokens as the node's
 * completion text is: LlamaCompletion's own text detokenizes the new tokens alone, where SentencePiece drops the
 * first token's leading space (" misunder…" becomes "misunder…"); the tokens are what must be equal.
 */
async function referenceText (path: string): Promise<string> {
  const { tokens } = await referenceGreedy(path, PROMPT, 30)
  const l = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error })
  const model = await l.loadModel({ modelPath: path, vocabOnly: true })
  try {
    return model.detokenize(tokens as Token[], false, model.tokenize(PROMPT, true))
  } finally {
    await model.dispose()
  }
}

const MODELS: Array<{ name: string, path: () => string }> = [
  { name: 'qwen3moe (8 layers, 8 experts, 2 used, Q8_0)', path: () => generatedModel('q8_0', { arch: 'qwen3moe', layers: 8, archOptions: { experts: 8, experts_used: 2 } }) },
  { name: 'gemma3 (6 layers, sliding window 8, Q8_0)', path: () => generatedModel('q8_0', { arch: 'gemma3', layers: 6, archOptions: { swa: 8, pattern: 2 } }) }
]

describe('MoE and sliding-window models across three processes', () => {
  for (const { name, path: pathOf } of MODELS) {
    it(`${name}: split by memory budgets, every node returns llama.cpp's greedy text`, async () => {
      const path = pathOf()
      const id = modelIdOfPath(path)
      const budget = String(budgetForSplitMiB(path, id, 3).mib)
      const start = async (n: string, peers: string[]): Promise<MeshNodeProcess> => {
        const dataDir = mkdtempSync(join(tmpdir(), `exo-moe-${n}-`))
        dirs.push(dataDir)
        const node = await startMeshNode({ name: n, dataDir, peers, extraArgs: ['--model', path, '--memory-budget', budget, '--log-level', 'info'] })
        running.push(node)
        return node
      }
      const prefix = name.split(' ')[0]!
      const a = await start(`${prefix}-a`, [])
      const trio = [a, ...await Promise.all([start(`${prefix}-b`, [a.p2pAddr]), start(`${prefix}-c`, [a.p2pAddr])])]
      try {
        const plan = await waitFor('an agreed plan', async () => agreedPlan(await Promise.all(trio.map(clusterState))), 90_000, 100)
        assert.ok(plan.stages.length >= 2, `expected a split, got ${plan.stages.length} stage(s)`)
        process.stderr.write(`# ${name}: plan ${plan.stages.map((s) => `${s.name}[${s.start},${s.end})`).join(' → ')} (budget ${budget} MiB)\n`)
        const reference = await referenceText(path)
        assert.ok(reference.length > 0)
        for (const n of trio) assert.equal(await complete(n, id), reference, `text from ${n.name}`)
      } finally {
        await Promise.all(trio.map(async (n) => { await stopProcess(n) }))
        running = running.filter((n) => !trio.includes(n))
      }
    })
  }
})
