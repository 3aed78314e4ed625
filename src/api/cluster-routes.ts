import type express from 'express'
import { ExoError } from '../shared/errors/exo-error.js'
import type { HttpAppDeps } from './http-app-deps.js'

/** Runs a snapshot function; a node that is still starting or already stopping answers 503. */
function serve (res: express.Response, produce: () => void | Promise<void>): void {
  const fail = (err: unknown): void => {
    if (err instanceof ExoError) { res.status(503).json({ error: { code: err.code, message: err.message } }); return }
    res.status(500).json({ error: { code: 'INTERNAL', message: 'internal error' } })
  }
  try {
    const p = produce()
    if (p !== undefined) p.catch(fail)
  } catch (err) { fail(err) }
}

/**
 * GET /cluster/state (JSON of src/shared/cluster-state.ts) and GET /metrics (Prometheus text).
 * Read-only views of the mesh, guarded by the API key like every route (/metrics opens with `--metrics-public`).
 */
export function mountClusterRoutes (app: express.Express, deps: HttpAppDeps): void {
  app.get('/cluster/state', (_req, res) => {
    serve(res, () => { res.set('cache-control', 'no-store').json(deps.clusterState()) })
  })
  app.get('/metrics', (_req, res) => {
    serve(res, async () => {
      const text = await deps.metrics()
      res.set('content-type', 'text/plain; version=0.0.4; charset=utf-8').set('cache-control', 'no-store').send(text)
    })
  })
}
