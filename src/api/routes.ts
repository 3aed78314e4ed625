import express from 'express'
import { InvalidRequestError, RouteNotFoundError } from '../shared/errors/api-errors.js'
import { dialectOf as pathDialect } from './http-errors.js'
import { disconnectSignal, resolveModel, runGeneration, sendError } from './generation-runner.js'
import * as openai from './dialects/openai.js'
import * as completions from './dialects/openai-completions.js'
import * as responses from './dialects/openai-responses.js'
import * as anthropic from './dialects/anthropic.js'
import * as ollama from './dialects/ollama.js'
import { parseBody } from './dialects/common.js'
import { handleOllamaDelete, handleOllamaPull } from './ollama-pull-routes.js'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import type { Dialect } from './http-errors.js'
import type { HttpAppDeps } from './http-app-deps.js'

/** Largest accepted request body. Larger → 413 in the route's dialect. */
export const BODY_LIMIT_BYTES = 4 * 1024 * 1024

/**
 * THE route table of the OpenAI, Anthropic and Ollama surfaces. Every route (behind the app's API key
 * guard, src/api/api-key.ts): JSON body (any content type, ≤ 4 MiB), then a thin dialect adapter over
 * `deps.inference`. Errors always come back in the route's dialect shape.
 */
export function mountApiRoutes (app: express.Express, deps: HttpAppDeps): void {
  const { inference } = deps
  const router = express.Router()
  const json = express.json({ limit: BODY_LIMIT_BYTES, type: () => true })
  const handle = (dialect: Dialect, fn: (req: Request, res: Response) => Promise<void>): RequestHandler =>
    (req, res) => { fn(req, res).catch((err: unknown) => { sendError(res, dialect, err) }) }

  // ---- OpenAI ---------------------------------------------------------------------------------
  router.get('/v1/models', json, handle('openai', async (_req, res) => {
    res.json(completions.modelList(await inference.listModels({ signal: disconnectSignal(res) })))
  }))
  router.get('/v1/models/:id', json, handle('openai', async (req, res) => {
    res.json(completions.modelJson(await resolveModel(inference, String(req.params.id), disconnectSignal(res))))
  }))
  router.post('/v1/chat/completions', json, handle('openai', async (req, res) => {
    await runGeneration({ dialect: 'openai', framing: 'sse', parse: (b) => openai.toInferenceRequest(b), collect: openai.collectResponse, stream: openai.streamResponse }, inference, req, res)
  }))
  router.post('/v1/completions', json, handle('openai', async (req, res) => {
    await runGeneration({ dialect: 'openai', framing: 'sse', parse: (b) => completions.toInferenceRequest(b), collect: completions.collectResponse, stream: completions.streamResponse }, inference, req, res)
  }))
  router.post('/v1/responses', json, handle('openai', async (req, res) => {
    await runGeneration({ dialect: 'openai', framing: 'sse', parse: (b) => responses.toInferenceRequest(b), collect: responses.collectResponse, stream: responses.streamResponse }, inference, req, res)
  }))

  // ---- Anthropic ------------------------------------------------------------------------------
  router.post('/v1/messages', json, handle('anthropic', async (req, res) => {
    await runGeneration({
      dialect: 'anthropic',
      framing: 'sse',
      parse: (b) => anthropic.toInferenceRequest(b),
      collect: anthropic.collectResponse,
      stream: async (events, sink, call) => {
        const promptTokens = await inference.countTokens(call.request, { signal: disconnectSignal(res) }).catch(() => undefined)
        await anthropic.streamResponse(events, sink, call, promptTokens)
      }
    }, inference, req, res)
  }))
  router.post('/v1/messages/count_tokens', json, handle('anthropic', async (req, res) => {
    const request = anthropic.toCountTokensRequest(req.body)
    const signal = disconnectSignal(res)
    await resolveModel(inference, request.model, signal)
    res.json({ input_tokens: await inference.countTokens(request, { signal }) })
  }))

  // ---- Ollama ---------------------------------------------------------------------------------
  router.post('/api/chat', json, handle('ollama', async (req, res) => {
    await runGeneration({
      dialect: 'ollama', framing: 'ndjson', parse: (b) => ollama.toChatRequest(b), collect: ollama.collectResponse, stream: ollama.streamResponse,
      shortcut: (call) => call.loadOnly ? ollama.loadedResponse(call) : undefined
    }, inference, req, res)
  }))
  router.post('/api/generate', json, handle('ollama', async (req, res) => {
    // the prompt form depends on the model (chat template or not): resolve the model first
    const name = typeof (req.body as { model?: unknown } | undefined)?.model === 'string' ? (req.body as { model: string }).model : undefined
    const signal = disconnectSignal(res)
    const model = name === undefined ? undefined : await resolveModel(inference, ollama.ollamaModelName(name), signal)
    await runGeneration({
      dialect: 'ollama', framing: 'ndjson', parse: (b) => ollama.toGenerateRequest(b, model?.hasChatTemplate ?? false), collect: ollama.collectResponse, stream: ollama.streamResponse,
      shortcut: (call) => call.loadOnly ? ollama.loadedResponse(call) : undefined
    }, inference, req, res, async () => { if (model === undefined) throw new Error('unreachable: parse requires model'); return model })
  }))
  router.get('/api/tags', json, handle('ollama', async (_req, res) => {
    res.json(ollama.tagsResponse(await inference.listModels({ signal: disconnectSignal(res) }), false))
  }))
  router.get('/api/ps', json, handle('ollama', async (_req, res) => {
    res.json(ollama.tagsResponse(await inference.listModels({ signal: disconnectSignal(res) }), true))
  }))
  router.post('/api/show', json, handle('ollama', async (req, res) => {
    const b = parseBody(ollama.showBody, req.body)
    const name = b.model ?? b.name
    if (name === undefined) { sendError(res, 'ollama', new InvalidRequestError('model is required', 'model')); return }
    res.json(ollama.showResponse(await resolveModel(inference, ollama.ollamaModelName(name), disconnectSignal(res))))
  }))
  router.get('/api/version', json, (_req, res) => { res.json({ version: deps.version }) })
  router.post('/api/pull', json, handle('ollama', async (req, res) => { await handleOllamaPull(deps.models, req, res) }))
  router.delete('/api/delete', json, handle('ollama', async (req, res) => { await handleOllamaDelete(deps.models, req, res) }))

  // known Ollama paths with the wrong method: 404 in the Ollama shape (other /api/* paths belong to other mounts)
  router.all(['/api/chat', '/api/generate', '/api/tags', '/api/show', '/api/ps', '/api/version', '/api/pull', '/api/delete'], (req, res) => {
    sendError(res, 'ollama', new RouteNotFoundError(`no route ${req.method} ${req.path}`))
  })
  // unknown /v1 routes: 404 in the OpenAI shape (Anthropic's under /v1/messages)
  router.all(/^\/v1\//, (req, res) => {
    sendError(res, req.path.startsWith('/v1/messages') ? 'anthropic' : 'openai', new RouteNotFoundError(`no route ${req.method} ${req.path}`))
  })
  // body-parser errors (malformed JSON 400, too large 413, bad charset 415) in the route's dialect
  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (!isApiPath(req.path)) { next(err); return }
    sendError(res, dialectOf(req.path), err)
  })
  app.use(router)
}

function isApiPath (path: string): boolean {
  return path.startsWith('/v1/') || path.startsWith('/api/')
}

/** Which error shape an API path speaks. */
export function dialectOf (path: string): Dialect {
  const d = pathDialect(path)
  return d === 'node' ? 'openai' : d
}
