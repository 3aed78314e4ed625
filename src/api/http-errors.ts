import { ExoError } from '../shared/errors/exo-error.js'
import { InvalidRequestError } from '../shared/errors/api-errors.js'

/** The three error-body families the API speaks. Responses API errors use the OpenAI shape. */
export type Dialect = 'openai' | 'anthropic' | 'ollama'

/**
 * Which error shape a path speaks: Anthropic under /v1/messages, OpenAI elsewhere under /v1, Ollama under
 * /api; 'node' (`{ error: { code, message } }`) for the node's own routes (/cluster/state, /metrics, …).
 */
export function dialectOf (path: string): Dialect | 'node' {
  if (path.startsWith('/v1/messages')) return 'anthropic'
  if (path.startsWith('/v1/') || path === '/v1') return 'openai'
  if (path.startsWith('/api/') || path === '/api') return 'ollama'
  return 'node'
}

/** Status for an error code raised anywhere in the node. Codes of other areas are matched by pattern. */
export function statusForError (err: unknown): number {
  if (err instanceof ExoError) {
    const code = err.code
    switch (code) {
      case 'INVALID_REQUEST': return 400
      case 'UNAUTHORIZED': return 401
      case 'UNKNOWN_MODEL': case 'ROUTE_NOT_FOUND': return 404
      case 'PAYLOAD_TOO_LARGE': return 413
      case 'ABORTED': return 499
    }
    if (/BUSY/.test(code)) return 429 // e.g. ACTIVATIONS_BUSY: a stage reached its session limit
    if (/CONTEXT/.test(code)) return 400 // e.g. CONTEXT_TOO_LONG: the prompt does not fit
    if (/MODEL_NOT_FOUND|UNKNOWN_MODEL/.test(code)) return 404
    if (/PLAN|NOT_READY|UNAVAILABLE|NO_STAGE|FIRST_STAGE|NO_ENGINE/.test(code)) return 503 // e.g. NO_PLAN, PLAN_NOT_READY, NOT_FIRST_STAGE, NO_ENGINE
    if (/UNTOKENIZABLE|CHAT_TEMPLATE/.test(code)) return 400 // the client's text or message order
    if (/INVALID|GRAMMAR|SCHEMA/.test(code)) return 400
    return 500
  }
  const status = (err as { status?: unknown, statusCode?: unknown } | null)?.status ??
    (err as { statusCode?: unknown } | null)?.statusCode
  // body-parser errors (malformed JSON 400, too large 413, bad charset 415) carry their status
  if (typeof status === 'number' && status >= 400 && status < 500) return status
  return 500
}

export interface ErrorPayload {
  status: number
  body: unknown
}

/** The dialect-shaped error body for `err`. Never leaks stack traces; 5xx messages stay generic-ish. */
export function errorPayload (dialect: Dialect, err: unknown): ErrorPayload {
  const status = statusForError(err)
  const message = errorMessage(err, status)
  const code = err instanceof ExoError ? err.code : bodyParserCode(err)
  const param = err instanceof InvalidRequestError ? err.param ?? null : null
  if (dialect === 'anthropic') {
    return { status, body: { type: 'error', error: { type: anthropicType(status), message } } }
  }
  if (dialect === 'ollama') return { status, body: { error: message } }
  return { status, body: { error: { message, type: openAiType(status), param, code: code ?? null } } }
}

function errorMessage (err: unknown, status: number): string {
  if (err instanceof ExoError) return err.message
  const type = (err as { type?: unknown } | null)?.type
  if (type === 'entity.parse.failed') return `malformed JSON body: ${(err as Error).message}`
  if (type === 'entity.too.large') return `request body too large (limit ${String((err as { limit?: unknown }).limit)} bytes)`
  if (status < 500 && err instanceof Error) return err.message
  return 'internal error'
}

function bodyParserCode (err: unknown): string | undefined {
  const type = (err as { type?: unknown } | null)?.type
  if (type === 'entity.parse.failed') return 'invalid_json'
  if (type === 'entity.too.large') return 'request_too_large'
  return undefined
}

function openAiType (status: number): string {
  if (status === 401) return 'authentication_error'
  if (status === 429) return 'rate_limit_error'
  if (status === 404) return 'not_found_error'
  if (status === 503) return 'service_unavailable'
  if (status >= 500) return 'server_error'
  return 'invalid_request_error'
}

function anthropicType (status: number): string {
  if (status === 401) return 'authentication_error'
  if (status === 429) return 'rate_limit_error'
  if (status === 404) return 'not_found_error'
  if (status === 413) return 'request_too_large'
  if (status === 503) return 'overloaded_error'
  if (status >= 500) return 'api_error'
  return 'invalid_request_error'
}

/** Seconds a client refused with 429 should wait: the admission gate's estimate, else 1. */
export function retryAfterSeconds (err: unknown): number {
  const s = (err as { retryAfterSeconds?: unknown } | null)?.retryAfterSeconds
  return typeof s === 'number' && Number.isInteger(s) && s >= 1 ? s : 1
}
