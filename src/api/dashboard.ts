import express from 'express'
import { fileURLToPath } from 'node:url'
import type { HttpAppDeps } from './http-app-deps.js'

/** Folder of the dashboard's sources, served as they are (plain ES modules + CSS, nothing built). */
export const DASHBOARD_STATIC_DIR = fileURLToPath(new URL('./dashboard/static/', import.meta.url))

/**
 * GET / serves the dashboard; its modules and styles live under /dashboard/.
 * The page itself is public: it reads /cluster/state and the /v1 routes, which enforce the API key.
 */
export function mountDashboard (app: express.Express, _deps: HttpAppDeps): void {
  const noCache = { 'cache-control': 'no-cache' }
  app.get(['/', '/index.html'], (_req, res) => {
    res.set(noCache).sendFile('index.html', { root: DASHBOARD_STATIC_DIR })
  })
  app.use('/dashboard', express.static(DASHBOARD_STATIC_DIR, {
    index: false,
    fallthrough: true,
    setHeaders: (res) => { res.setHeader('cache-control', 'no-cache') }
  }))
}
