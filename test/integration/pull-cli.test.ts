import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { Ollama } from 'ollama'
import { BUNDLED_MODEL_PATH } from '../../src/node/model-registry.js'
import { startFakeHub } from '../helpers/fake-hub.js'
import { exoCli } from '../helpers/exo-cli.js'
import type { FakeHub, FakeHubOptions } from '../helpers/fake-hub.js'
import { startApiNode } from './helpers/api-node.js'
import { waitFor } from './helpers/mesh-node-process.js'
import { referenceGreedy } from '../model/helpers/completion-reference.js'
import type { ClusterStateJson } from '../../src/shared/cluster-state.js'

/** `exo-p2p pull / models / rm / start --model`, and Ollama's pull / delete, as real processes against a local Hub. */
const root = mkdtempSync(join(tmpdir(), 'exo-pull-cli-'))
const stories = readFileSync(BUNDLED_MODEL_PATH)
const tiny = readFileSync(fileURLToPath(new URL('../fixtures/models/tinystories-656k-q8_0.gguf', import.meta.url)))
const options: FakeHubOptions = {
  repos: {
    'ggml-org/stories-GGUF': { files: [{ path: 'stories-copy-F32.gguf', content: stories }] },
    'ggml-org/tinystories-GGUF': { files: [{ path: 'tinystories-656k-f32.gguf', content: Buffer.from('other quant') }, { path: 'tinystories-656k-q8_0.gguf', content: tiny }] }
  }
}
let hub: FakeHub
before(async () => { hub = await startFakeHub(options) })
after(async () => { await hub.close(); rmSync(root, { recursive: true, force: true }) })

const env = (): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: join(root, 'hf-cache'), HF_HOME: join(root, 'hf-home') }
  delete e.HF_TOKEN
  delete e.EXO_P2P_DATA_DIR
  return e
}

interface Run { code: number | null, stdout: string, stderr: string }
async function cli (args: string[], onSpawn?: (kill: () => void) => void): Promise<Run> {
  const child = spawn(process.execPath, [exoCli(), ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  onSpawn?.(() => child.kill('SIGKILL'))
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => { resolve(c) }))
  return { code, stdout, stderr }
}

test('pull prints JSON progress off a TTY; models lists it (arch, quant, layers, size); rm removes it', async () => {
  const dataDir = join(root, 'a')
  const p = await cli(['pull', 'ggml-org/stories-GGUF', '--data-dir', dataDir])
  assert.equal(p.code, 0, p.stderr)
  const lines = p.stdout.trim().split('\n')
  const events = lines.slice(0, -1).map((l) => JSON.parse(l) as { type: string, completed?: number, total?: number })
  assert.ok(events.some((e) => e.type === 'progress' && e.completed === stories.length && e.total === stories.length), 'a last progress line at 100%')
  assert.ok(events.some((e) => e.type === 'verifying'))
  assert.match(lines.at(-1)!, /^pulled stories-copy-F32 /)
  assert.deepEqual(readFileSync(join(dataDir, 'models', 'stories-copy-F32.gguf')), stories)

  const m = await cli(['models', '--json', '--data-dir', dataDir, '--api', 'http://127.0.0.1:9'])
  assert.equal(m.code, 0, m.stderr)
  const rows = JSON.parse(m.stdout) as Array<Record<string, unknown>>
  const row = rows.find((r) => r.id === 'stories-copy-F32')
  assert.deepEqual({ ...row, paths: undefined }, {
    id: 'stories-copy-F32', architecture: 'llama', quant: 'F32', sizeBytes: stories.length, layers: 5, nodes: null, source: 'hub', repo: 'ggml-org/stories-GGUF', paths: undefined
  })

  const r = await cli(['rm', 'stories-copy-F32', '--data-dir', dataDir])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(existsSync(join(dataDir, 'models', 'stories-copy-F32.gguf')), false)
  const again = await cli(['rm', 'stories-copy-F32', '--data-dir', dataDir])
  assert.equal(again.code, 1)
  assert.match(again.stderr, /stories-copy-F32.*not in the model store/)
})

test('a pull process killed mid-file (SIGKILL) resumes in the next process: bytes served ≈ the file once', async () => {
  const dataDir = join(root, 'b')
  options.chunkDelayMs = 15
  const before = hub.stats.contentBytes
  try {
    const killed = await cli(['pull', 'ggml-org/stories-GGUF', '--data-dir', dataDir], (kill) => {
      hub.onContent = () => { if (hub.stats.contentBytes - before >= stories.length / 2) { hub.onContent = undefined; kill() } }
    })
    assert.equal(killed.code, null, 'killed by the signal')
    assert.equal(existsSync(join(dataDir, 'models', 'stories-copy-F32.gguf')), false)
    options.chunkDelayMs = 0
    const resumed = await cli(['pull', 'ggml-org/stories-GGUF', '--data-dir', dataDir])
    assert.equal(resumed.code, 0, resumed.stderr)
    assert.deepEqual(readFileSync(join(dataDir, 'models', 'stories-copy-F32.gguf')), stories)
    const served = hub.stats.contentBytes - before
    process.stderr.write(`# SIGKILL mid-file then resume: ${served} bytes served for a ${stories.length}-byte file (${(served / stories.length).toFixed(2)}×)\n`)
    // what the killed process had received but not yet recorded (its state file is written every 200 ms) comes again
    assert.ok(served <= stories.length * 1.5, `served ${served} bytes for a ${stories.length}-byte file`)
    assert.match(hub.stats.ranges.at(-1)!, /^bytes=[1-9]\d*-/, 'the second process asked for the rest only')
  } finally {
    hub.onContent = undefined
    options.chunkDelayMs = 0
  }
})

test('start --model with a file that does not exist exits 1 naming it', async () => {
  const r = await cli(['start', '--model', join(root, 'missing.gguf'), '--data-dir', join(root, 'c'), '--http-port', '0', '--p2p-port', '0', '--no-mdns', '--host', '127.0.0.1'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /missing\.gguf does not exist/)
})

test('start --model org/repo:QUANT pulls then serves it; the ollama client pulls (progress in Ollama\'s shape) and deletes', async () => {
  const saved = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_HUB_CACHE: process.env.HF_HUB_CACHE }
  Object.assign(process.env, { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: join(root, 'hf-cache') })
  const node = await startApiNode(['--model', 'ggml-org/tinystories-GGUF:Q8_0'])
  try {
    const ollama = new Ollama({ host: node.url })
    const g = await ollama.generate({ model: 'tinystories-656k-q8_0', prompt: 'Once upon a time', stream: false, options: { temperature: 0, num_predict: 5 } })
    assert.ok((g.response ?? '').length > 0, 'the pulled model generates')

    const statuses: Array<{ status: string, total?: number, completed?: number, digest?: string }> = []
    for await (const p of await ollama.pull({ model: 'hf.co/ggml-org/stories-GGUF:latest', stream: true })) statuses.push(p)
    // the dashboard's source: the node's pulls in /cluster/state (a finished one stays a minute)
    const state = await (await fetch(`${node.url}/cluster/state`)).json() as ClusterStateJson
    assert.deepEqual(state.downloads?.map((d) => [d.ref, d.id, d.state, d.completed, d.total]), [['hf.co/ggml-org/stories-GGUF', 'stories-copy-F32', 'done', stories.length, stories.length]])
    const names = statuses.map((s) => s.status).filter((s, i, a) => s !== a[i - 1])
    const digest = (await import('node:crypto')).createHash('sha256').update(stories).digest('hex')
    assert.deepEqual(names, ['pulling manifest', `pulling ${digest.slice(0, 12)}`, 'verifying sha256 digest', 'writing manifest', 'success'])
    const last = statuses.filter((s) => s.digest === `sha256:${digest}`).at(-1)!
    assert.deepEqual([last.completed, last.total], [stories.length, stories.length])
    assert.ok((await ollama.list()).models.some((m) => m.name.startsWith('stories-copy-F32')))

    await ollama.delete({ model: 'stories-copy-F32' })
    assert.ok(!(await ollama.list()).models.some((m) => m.name.startsWith('stories-copy-F32')))
    await assert.rejects(ollama.delete({ model: 'stories-copy-F32' }), (err: unknown) => (err as { status_code?: number }).status_code === 404 && /not in the model store/.test((err as Error).message))
    const failed = await ollama.pull({ model: 'ggml-org/no-such-repo', stream: false }).then(() => undefined, (err: Error) => err)
    assert.match(String(failed?.message), /no-such-repo/)
  } finally {
    await node.close()
    for (const [k, v] of Object.entries(saved)) { if (v === undefined) Reflect.deleteProperty(process.env, k); else process.env[k] = v }
  }
})

test('a node whose --model is not on disk serves it once the ollama client pulls it: announced and planned without a restart, greedy text equals llama.cpp', async () => {
  const saved = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_HUB_CACHE: process.env.HF_HUB_CACHE }
  Object.assign(process.env, { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: join(root, 'hf-cache-2') })
  const reference = referenceGreedy(BUNDLED_MODEL_PATH, 'Once upon a time', 8)
  const node = await startApiNode(['--model', 'stories-copy-F32'])
  try {
    const self = async (): Promise<ClusterStateJson['members'][number] & { plan?: ClusterStateJson['plan'] }> => {
      const s = await (await fetch(`${node.url}/cluster/state`)).json() as ClusterStateJson
      return { ...s.members.find((m) => m.peerId === s.self.peerId)!, ...(s.plan !== undefined ? { plan: s.plan } : {}) }
    }
    assert.ok(!(await self()).models.some((m) => m.id === 'stories-copy-F32'), 'not announced before the pull')
    await new Ollama({ host: node.url }).pull({ model: 'hf.co/ggml-org/stories-GGUF', stream: false })
    const t0 = performance.now()
    await waitFor('the pulled model announced and its plan ready', async () => { const m = await self(); return m.models.some((x) => x.id === 'stories-copy-F32') && m.plan?.ready === true ? true : undefined }, 20_000, 100)
    process.stderr.write(`# pulled model announced and planned ${Math.round(performance.now() - t0)} ms after the pull ended\n`)
    const res = await fetch(`${node.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'stories-copy-F32', prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }) })
    const body = await res.json() as { choices: Array<{ text: string }> }
    assert.equal(res.status, 200, JSON.stringify(body))
    assert.equal(body.choices[0]!.text.replace(/^ /, ''), (await reference).text.replace(/^ /, ''))
  } finally {
    await node.close()
    for (const [k, v] of Object.entries(saved)) { if (v === undefined) Reflect.deleteProperty(process.env, k); else process.env[k] = v }
  }
})
