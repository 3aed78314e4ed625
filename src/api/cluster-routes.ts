import type express from 'express'
import type { HttpAppDeps } from './http-app-deps.js'

/**
 * GET /cluster/state (JSON of src/shared/cluster-state.ts) and GET /metrics (Prometheus text).
 * Read-only views of the mesh; they stay open even when an API key guards the inference routes.
 */
export function mountClusterRoutes (app: express.Express, deps: HttpAppDeps): void {
  app.get('/cluster/state', (_req, res) => {
    res.set('cache-control', 'no-store').json(deps.clusterState())
  })
  app.get('/metrics', (_req, res) => {
    res.set('content-type', 'text/plain; version=0.0.4; charset=utf-8').set('cache-control', 'no-store').send(deps.metrics())
  })
}
