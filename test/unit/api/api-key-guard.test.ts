// With --api-key every HTTP route but the dashboard's static files answers 401 without the key, in the
// route's error shape; --metrics-public opens GET /metrics alone; `peers` / `plan` send the key.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { createHttpApp } from '../../../src/api/app.js'
import { fetchClusterState, NoNodeError } from '../../../src/cli/fetch-cluster-state.js'
import type { HttpAppDeps } from '../../../src/api/http-app-deps.js'
import type { ClusterStateJson } from '../../../src/shared/cluster-state.js'
import type { InferenceService } from '../../../src/shared/inference.js'

const KEY = 'k-0123456789abcdef'
const inference: InferenceService = {
  async * generate () {},
  async countTokens () { return 0 },
  async listModels () { return [] }
}
const state = { self: { name: 'n' }, members: [] } as unknown as ClusterStateJson

async function serve (extra: Partial<HttpAppDeps> = {}): Promise<{ base: string, server: Server, app: ReturnType<typeof createHttpApp> }> {
  const app = createHttpApp({ inference, clusterState: () => state, metrics: () => 'exo_p2p_x 1\n', apiKey: KEY, version: 't', ...extra })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, app }
}

/** Every route the app registers (method, concrete path), walked from express's router: a new route is covered by default. */
function routesOf (app: unknown): Array<[string, string]> {
  const out: Array<[string, string]> = []
  const walk = (stack: Array<{ route?: { path: unknown, methods: Record<string, boolean> }, handle?: { stack?: unknown[] } }>): void => {
    for (const l of stack) {
      if (l.route !== undefined) {
        const paths = Array.isArray(l.route.path) ? l.route.path : [l.route.path]
        for (const p of paths) {
          if (typeof p !== 'string') continue
          for (const m of Object.keys(l.route.methods)) out.push([m === '_all' ? 'DELETE' : m.toUpperCase(), p.replace(/:\w+/g, 'x')])
        }
      } else if (l.handle?.stack !== undefined) walk(l.handle.stack as typeof stack)
    }
  }
  walk((app as { router: { stack: Parameters<typeof walk>[0] } }).router.stack)
  return out
}

function shapeOf (path: string): 'anthropic' | 'openai' | 'ollama' | 'node' {
  if (path.startsWith('/v1/messages')) return 'anthropic'
  if (path.startsWith('/v1/')) return 'openai'
  if (path.startsWith('/api/')) return 'ollama'
  return 'node'
}

function assertShape (path: string, body: any): void {
  const shape = shapeOf(path)
  if (shape === 'openai') assert.equal(body.error.type, 'authentication_error', path)
  else if (shape === 'anthropic') assert.deepEqual([body.type, body.error.type], ['error', 'authentication_error'], path)
  else if (shape === 'ollama') assert.equal(typeof body.error, 'string', path)
  else assert.equal(body.error.code, 'UNAUTHORIZED', path)
}

describe('API key guard', () => {
  let s: Awaited<ReturnType<typeof serve>>
  before(async () => { s = await serve() })
  after(() => { s.server.close() })

  test('every route but the dashboard answers 401 without the key, or with a wrong one, in its own shape', async () => {
    const routes = routesOf(s.app).filter(([, p]) => p !== '/' && p !== '/index.html')
    for (const p of ['/cluster/state', '/metrics', '/v1/chat/completions', '/v1/messages', '/api/chat', '/api/tags']) {
      assert.ok(routes.some(([, q]) => q === p), `route table lists ${p}`)
    }
    routes.push(['GET', '/v1/nope'], ['GET', '/v1/messages/nope'], ['GET', '/api/nope'], ['GET', '/nope'])
    for (const [method, path] of routes) {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { 'x-api-key': `${KEY}x` }, { authorization: KEY }] as Array<Record<string, string>>) {
        const res = await fetch(s.base + path, { method, headers: { 'content-type': 'application/json', ...headers }, ...(method === 'POST' ? { body: '{}' } : {}) })
        assert.equal(res.status, 401, `${method} ${path} ${JSON.stringify(headers)}`)
        assertShape(path, await res.json())
      }
    }
  })

  test('the key as bearer or x-api-key opens the routes; the dashboard needs none', async () => {
    for (const headers of [{ authorization: `Bearer ${KEY}` }, { 'x-api-key': KEY }] as Array<Record<string, string>>) {
      assert.equal((await fetch(`${s.base}/cluster/state`, { headers })).status, 200)
      assert.equal(await (await fetch(`${s.base}/metrics`, { headers })).text(), 'exo_p2p_x 1\n')
      assert.equal((await fetch(`${s.base}/v1/models`, { headers })).status, 200)
      assert.equal((await fetch(`${s.base}/api/version`, { headers })).status, 200)
    }
    assert.equal((await fetch(`${s.base}/`)).status, 200)
    assert.equal((await fetch(`${s.base}/dashboard/api.js`)).status, 200)
  })

  test('peers / plan send the key from the flag or EXO_P2P_API_KEY, and say so when it is missing', async () => {
    assert.deepEqual(await fetchClusterState(s.base, KEY), state)
    await assert.rejects(fetchClusterState(s.base, ''), (err: unknown) => err instanceof NoNodeError && /requires an API key: pass --api-key or set EXO_P2P_API_KEY/.test(err.message))
    await assert.rejects(fetchClusterState(s.base, 'bad'), (err: unknown) => err instanceof NoNodeError && /rejected/.test(err.message))
    const saved = process.env.EXO_P2P_API_KEY
    process.env.EXO_P2P_API_KEY = KEY
    try { assert.deepEqual(await fetchClusterState(s.base), state) } finally {
      if (saved === undefined) delete process.env.EXO_P2P_API_KEY; else process.env.EXO_P2P_API_KEY = saved
    }
  })
})

test('--metrics-public opens GET /metrics alone', async () => {
  const s = await serve({ metricsPublic: true })
  try {
    assert.equal((await fetch(`${s.base}/metrics`)).status, 200)
    assert.equal((await fetch(`${s.base}/cluster/state`)).status, 401)
    assert.equal((await fetch(`${s.base}/v1/models`)).status, 401)
  } finally { s.server.close() }
})

test('without a key every route is open', async () => {
  const s = await serve({ apiKey: undefined })
  try {
    assert.equal((await fetch(`${s.base}/cluster/state`)).status, 200)
    assert.equal((await fetch(`${s.base}/metrics`)).status, 200)
  } finally { s.server.close() }
})
