import { UnknownModelError } from '../shared/errors/model-errors.js'
import { createLogger } from '../shared/log.js'
import { errorPayload, retryAfterSeconds } from './http-errors.js'
import { ndjsonSink, sseSink } from './sse.js'
import { withToolCalls } from './tool-call-events.js'
import type { Request, Response } from 'express'
import type { Dialect } from './http-errors.js'
import type { StreamSink } from './sse.js'
import type { GenerationEvent, InferenceRequest, InferenceService, ModelInfo } from '../shared/inference.js'

const log = createLogger('api:generation')

/** One generating route of one dialect: its pure converter and its two responders. */
export interface GenerationRoute<Call extends { request: InferenceRequest, stream: boolean }> {
  dialect: Dialect
  framing: 'sse' | 'ndjson'
  /** pure body → call (throws InvalidRequestError) */
  parse: (body: unknown) => Call
  collect: (events: AsyncIterable<GenerationEvent>, call: Call) => Promise<unknown>
  stream: (events: AsyncIterable<GenerationEvent>, sink: StreamSink, call: Call, model: ModelInfo) => Promise<void>
  /** answer without generating (Ollama's empty prompt = load) */
  shortcut?: (call: Call) => unknown
}

/** An AbortSignal that fires when the client goes away before the response finished. */
export function disconnectSignal (res: Response): AbortSignal {
  const controller = new AbortController()
  res.on('close', () => { if (!res.writableFinished) controller.abort(new Error('client disconnected')) })
  return controller.signal
}

/** Finds the model in what the mesh can serve; 404 listing the known ones otherwise. */
export async function resolveModel (inference: InferenceService, id: string, signal: AbortSignal): Promise<ModelInfo> {
  const models = await inference.listModels({ signal })
  const found = models.find((m) => m.id === id)
  if (found === undefined) throw new UnknownModelError(id, models.map((m) => m.id))
  return found
}

/**
 * Runs one generation for an HTTP request. Errors before the first event (unknown model, context too
 * long, no ready plan) become a dialect-shaped error response; errors after streaming began become an
 * error frame in the stream. Client disconnect aborts the signal handed to generate().
 */
export async function runGeneration<Call extends { request: InferenceRequest, stream: boolean }> (
  route: GenerationRoute<Call>, inference: InferenceService, req: Request, res: Response,
  resolve: (call: Call, signal: AbortSignal) => Promise<ModelInfo> = async (call, signal) => await resolveModel(inference, call.request.model, signal)
): Promise<void> {
  const signal = disconnectSignal(res)
  let iterator: AsyncIterator<GenerationEvent> | undefined
  try {
    const call = route.parse(req.body)
    const model = await resolve(call, signal)
    if (route.shortcut !== undefined) {
      const answer = route.shortcut(call)
      if (answer !== undefined) { res.json(answer); return }
    }
    iterator = withToolCalls(inference.generate(call.request, { signal }), call.request)[Symbol.asyncIterator]()
    const first = await iterator.next()
    const events = resumed(first, iterator)
    if (!call.stream) { res.json(await route.collect(events, call)); return }
    const sink = route.framing === 'sse' ? sseSink(res) : ndjsonSink(res)
    try {
      await route.stream(events, sink, call, model)
    } catch (err) {
      if (!signal.aborted) {
        log.warn({ err, request: call.request.id }, 'generation failed mid-stream')
        await sink.send((errorPayload(route.dialect, err).body), route.dialect === 'anthropic' ? 'error' : undefined)
      }
    } finally {
      sink.end()
    }
  } catch (err) {
    sendError(res, route.dialect, err)
  } finally {
    await iterator?.return?.().catch(() => {})
  }
}

/** Sends a dialect-shaped error, unless the response already started (then just ends it). */
export function sendError (res: Response, dialect: Dialect, err: unknown): void {
  const { status, body } = errorPayload(dialect, err)
  if (status >= 500) log.error({ err }, 'request failed')
  if (res.headersSent) { if (!res.writableEnded) res.end(); return }
  if (status === 503) res.setHeader('Retry-After', '2') // no ready plan yet: the mesh is (re)planning
  if (status === 429) res.setHeader('Retry-After', String(retryAfterSeconds(err))) // the node's admission queue is full
  res.status(status).json(body)
}

/** The iterator again, with its already-pulled first result in front. */
async function * resumed (first: IteratorResult<GenerationEvent>, rest: AsyncIterator<GenerationEvent>): AsyncIterable<GenerationEvent> {
  if (first.done === true) return
  yield first.value
  for (;;) {
    const next = await rest.next()
    if (next.done === true) return
    yield next.value
  }
}
