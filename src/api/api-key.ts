import { createHash, timingSafeEqual } from 'node:crypto'
import type { Request, RequestHandler } from 'express'
import { UnauthorizedError } from '../shared/errors/api-errors.js'
import { dialectOf, errorPayload } from './http-errors.js'

/**
 * True when the request carries `key` as `Authorization: Bearer <key>` (OpenAI, Ollama clients) or
 * `x-api-key: <key>` (Anthropic clients). Either header is accepted on every route, so a client that
 * sends the "other" header (Anthropic SDK with authToken, proxies) still works. Constant time: both sides
 * are SHA-256 digests of equal length, compared with timingSafeEqual (the key's length does not leak).
 */
export function hasApiKey (req: Request, key: string): boolean {
  const expected = digest(key)
  const auth = req.headers.authorization
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim())
    if (m?.[1] !== undefined && timingSafeEqual(digest(m[1]), expected)) return true
  }
  const xKey = req.headers['x-api-key']
  return typeof xKey === 'string' && timingSafeEqual(digest(xKey), expected)
}

function digest (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

export interface ApiKeyOptions {
  /** the key; undefined or '' = open node */
  apiKey: string | undefined
  /** `--metrics-public`: GET /metrics answers without the key (scrapers on a trusted network) */
  metricsPublic?: boolean
}

/** The dashboard's static files: the page itself is public, everything it reads is guarded. */
export function isDashboardPath (path: string): boolean {
  return path === '/' || path === '/index.html' || path === '/dashboard' || path.startsWith('/dashboard/')
}

/**
 * One guard in front of every route: with a key set, any request but the dashboard's static files (and
 * /metrics under `metricsPublic`) must carry it, or gets 401 in its route's error shape — OpenAI under
 * /v1 (Anthropic under /v1/messages), Ollama under /api, `{ error: { code, message } }` elsewhere.
 */
export function requireApiKey (options: ApiKeyOptions): RequestHandler {
  const { apiKey } = options
  return (req, res, next) => {
    if (apiKey === undefined || apiKey === '' || isDashboardPath(req.path)) { next(); return }
    if (options.metricsPublic === true && req.path === '/metrics') { next(); return }
    if (hasApiKey(req, apiKey)) { next(); return }
    const dialect = dialectOf(req.path)
    const err = new UnauthorizedError(dialect === 'anthropic' ? 'invalid x-api-key' : 'invalid or missing API key (Authorization: Bearer <key>)')
    res.set('www-authenticate', 'Bearer')
    if (dialect === 'node') { res.status(401).json({ error: { code: err.code, message: err.message } }); return }
    const { status, body } = errorPayload(dialect, err)
    res.status(status).json(body)
  }
}
