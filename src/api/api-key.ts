import { createHash, timingSafeEqual } from 'node:crypto'
import type { Request } from 'express'

/**
 * True when the request carries `key` as `Authorization: Bearer <key>` (OpenAI, Ollama clients) or
 * `x-api-key: <key>` (Anthropic clients). Either header is accepted on every route, so a client that
 * sends the "other" header (Anthropic SDK with authToken, proxies) still works.
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
