import express from 'express'
import { mountApiRoutes } from './routes.js'
import { mountClusterRoutes } from './cluster-routes.js'
import { mountDashboard } from './dashboard.js'
import { requireApiKey } from './api-key.js'
import type { HttpAppDeps } from './http-app-deps.js'

export type { HttpAppDeps }

/** Builds the express app of a node. Never listens: the node (or a test) does. */
export function createHttpApp (deps: HttpAppDeps): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.use(requireApiKey({ apiKey: deps.apiKey, metricsPublic: deps.metricsPublic === true }))
  mountClusterRoutes(app, deps)
  mountApiRoutes(app, deps)
  mountDashboard(app, deps)
  return app
}
