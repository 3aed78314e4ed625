import type express from 'express'
import type { HttpAppDeps } from './http-app-deps.js'

/** GET / dashboard static files (issue: dashboard). */
export function mountDashboard (_app: express.Express, _deps: HttpAppDeps): void {}
