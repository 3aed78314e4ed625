import type express from 'express'
import type { HttpAppDeps } from './http-app-deps.js'

/** GET /cluster/state and GET /metrics (issue: the mesh). */
export function mountClusterRoutes (_app: express.Express, _deps: HttpAppDeps): void {}
