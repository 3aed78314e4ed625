// DEV AID ONLY (not used by the browser tests, which run real nodes): serves createHttpApp with a fake
// cluster state and a fake token stream so the dashboard can be developed before the mesh and API land.
//   node --import tsx test/browser/helpers/fixture-server.ts [port] [--api-key KEY] [--nodes N] [--no-plan]
// Routes the real app already serves win; the fallbacks below answer only what is still a stub.
import type express from 'express'
import { createHttpApp } from '../../../src/api/app.js'
import type { ClusterStateJson, MemberJson } from '../../../src/shared/cluster-state.js'
import type { InferenceService } from '../../../src/shared/inference.js'

const args = process.argv.slice(2)
const port = Number(args.find((a) => /^\d+$/.test(a)) ?? 8787)
const keyAt = args.indexOf('--api-key')
const apiKey = keyAt >= 0 ? args[keyAt + 1] : undefined
const nodesAt = args.indexOf('--nodes')
const nNodes = nodesAt >= 0 ? Number(args[nodesAt + 1]) : 2
const withPlan = !args.includes('--no-plan')
const started = Date.now()

function member (i: number): MemberJson {
  const layers = Math.ceil(5 / nNodes)
  return {
    peerId: `12D3KooWFake${String(i).padStart(40, 'x')}`,
    name: `node-${String.fromCharCode(97 + i)}`,
    state: i === 2 ? 'suspect' : 'alive',
    addresses: [`/ip4/127.0.0.1/tcp/${9000 + i}`],
    httpUrl: `http://127.0.0.1:${8000 + i}`,
    capabilities: { memoryBudgetBytes: 4e9, freeMemoryBytes: 2.5e9, cpuCores: 2, backend: 'cpu', computeMsPerUnit: 0.12 },
    models: [{ id: 'stories260k-f32', sizeBytes: 1185376 }],
    shards: [{ model: 'stories260k-f32', start: i * layers, end: Math.min(5, (i + 1) * layers), ready: true }],
    queueLength: 0,
    lastSeenMsAgo: i === 0 ? 0 : 400,
    rttMs: i === 0 ? undefined : 0.4 + i / 10
  }
}

function clusterState (): ClusterStateJson {
  // the last node "dies" 20 s after start (leaves members) to show the dead marking
  const n = Date.now() - started > 20_000 && nNodes > 1 ? nNodes - 1 : nNodes
  const members = Array.from({ length: n }, (_, i) => member(i))
  const links = members.flatMap((a) => members.filter((b) => b !== a).map((b) => ({ from: a.peerId, to: b.peerId, rttMs: 0.35, bandwidthBytesPerSec: 0 })))
  return {
    self: { peerId: members[0]!.peerId, name: members[0]!.name, httpUrl: members[0]!.httpUrl, addresses: members[0]!.addresses },
    members,
    links,
    viewHash: 'ab12cd34ef56ab12cd34ef56',
    ...(withPlan
      ? {
          plan: {
            id: 'plan-9f8e7d6c5b4a3f2e1d0c',
            model: 'stories260k-f32',
            ready: false,
            predictedMsPerToken: 0.9,
            measuredMsPerToken: 1.1,
            stages: members.map((m, i) => ({ peerId: m.peerId, name: m.name, start: m.shards[0]!.start, end: m.shards[0]!.end, ready: i === 0, loadProgress: 0.6, predictedMs: 0.4 }))
          }
        }
      : { plan: null, planReason: 'stories260k-f32 needs 1.2 MB; no set of members has it' })
  }
}

const inference: InferenceService = {
  async * generate () { /* unused: the fallback routes below stream directly */ },
  async countTokens () { return 0 },
  async listModels () { return [] }
}

const app = createHttpApp({ inference, clusterState, metrics: () => '', ...(apiKey !== undefined ? { apiKey } : {}), version: 'dev' })

const auth: express.RequestHandler = (req, res, next) => {
  if (apiKey === undefined || req.headers.authorization === `Bearer ${apiKey}`) { next(); return }
  res.status(401).json({ error: { message: 'missing or wrong API key' } })
}
app.get('/cluster/state', auth, (_req, res) => { res.json(clusterState()) })
app.get('/v1/models', auth, (_req, res) => { res.json({ object: 'list', data: [{ id: 'stories260k-f32', object: 'model', owned_by: 'exo-p2p' }] }) })
const words = ', there was a little girl named Lily. She loved to play outside in the park. One day,'.split(/(?= )/)
for (const path of ['/v1/chat/completions', '/v1/completions']) {
  app.post(path, auth, (req, res) => {
    if (path === '/v1/chat/completions') { res.status(400).json({ error: { message: 'model has no chat template: use /v1/completions' } }); return }
    res.set({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }).flushHeaders()
    let i = 0
    const timer = setInterval(() => {
      const text = words[i % words.length]!
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, text, finish_reason: null }] })}\n\n`)
      if (++i >= 60) { clearInterval(timer); res.write(`data: ${JSON.stringify({ choices: [{ index: 0, text: '', finish_reason: 'length' }] })}\n\ndata: [DONE]\n\n`); res.end() }
    }, 120)
    res.on('close', () => { clearInterval(timer); if (i < 60) process.stderr.write(`request cancelled after ${i} tokens\n`) })
  })
}
app.listen(port, '127.0.0.1', () => { process.stderr.write(`fixture dashboard on http://127.0.0.1:${port}/\n`) })
