import type { Stream, StreamHandler } from '@libp2p/interface'
import { AbortedError, ExoError } from '../../shared/errors/exo-error.js'
import { ProtocolDecodeError } from '../../shared/errors/protocol-errors.js'
import type { GenerationEvent, InferenceRequest } from '../../shared/inference.js'
import { createLogger } from '../../shared/log.js'
import type { Logger } from '../../shared/log.js'
import { FramedStream } from '../framed-stream.js'
import { decodeRequestFrame, encodeServerFrame } from './codec.js'
import { MAX_REQUEST_BYTES, REQUEST_DEADLINE_MS } from './constants.js'
import { ERROR_CODE_PATTERN } from './schema.js'

/** What the inference handler calls: the node's pipeline (first stage). Same shape as InferenceService.generate. */
export interface InferencePort {
  generate (request: InferenceRequest, options: { signal: AbortSignal }): AsyncIterable<GenerationEvent>
}

export interface InferenceHandlerOptions {
  /** Defaults to REQUEST_DEADLINE_MS (10 s). */
  requestDeadlineMs?: number
  log?: Logger
}

/**
 * Server side of protocols/inference.md: `libp2p.handle(INFERENCE_PROTOCOL, createInferenceHandler(port))`.
 * One request per stream; events are sent as produced (with backpressure); an ExoError from the
 * port becomes an ERROR frame with its code. The client resetting the stream, or closing its write
 * end before DONE, aborts the generation's signal. Never throws.
 */
export function createInferenceHandler (port: InferencePort, options: InferenceHandlerOptions = {}): StreamHandler {
  const log = options.log ?? createLogger('protocols:inference')
  const deadline = options.requestDeadlineMs ?? REQUEST_DEADLINE_MS
  return async (stream: Stream) => {
    await serve(stream, port, deadline, log)
  }
}

async function serve (stream: Stream, port: InferencePort, deadlineMs: number, log: Logger): Promise<void> {
  const framed = new FramedStream(stream, MAX_REQUEST_BYTES)
  const cancel = new AbortController()
  let done = false
  const onGone = (): void => { if (!done) cancel.abort(new AbortedError('client cancelled the inference request')) }
  stream.addEventListener('close', onGone)
  stream.addEventListener('remoteCloseWrite', onGone)
  let request: InferenceRequest
  try {
    const raw = await framed.next({ signal: cancel.signal, timeoutMs: deadlineMs })
    if (raw === undefined) throw new ProtocolDecodeError('stream closed before REQUEST')
    request = decodeRequestFrame(raw)
  } catch (err) {
    /** a client that sent garbage or nothing: tell it why when the stream still allows it, then reset */
    log.debug({ err }, 'inference stream refused')
    if (err instanceof ProtocolDecodeError && !framed.isClosed) await trySend(framed, 'BAD_REQUEST', err.message)
    done = true
    framed.abort(err as Error)
    return
  }
  try {
    for await (const event of port.generate(request, { signal: cancel.signal })) {
      await framed.send(encodeServerFrame({ type: 'event', event }), cancel.signal)
      if (event.type === 'done') { done = true; break }
    }
    if (!done) throw new InternalError(`generation of ${request.id} ended without a done event`)
    await framed.close()
  } catch (err) {
    /** every failure of the port ends here: the client gets its code, or the stream is already gone */
    done = true
    if (cancel.signal.aborted || framed.isClosed) {
      framed.abort(new AbortedError('inference request cancelled'))
      return
    }
    const code = err instanceof ExoError && ERROR_CODE_PATTERN.test(err.code) ? err.code : 'INTERNAL'
    log.warn({ err, requestId: request.id }, 'inference request failed')
    await trySend(framed, code, (err as Error).message ?? String(err))
    await framed.close()
  } finally {
    stream.removeEventListener('close', onGone)
    stream.removeEventListener('remoteCloseWrite', onGone)
  }
}

class InternalError extends ExoError {
  readonly code = 'INTERNAL'
}

async function trySend (framed: FramedStream, code: string, message: string): Promise<void> {
  try {
    await framed.send(encodeServerFrame({ type: 'error', code, message }), AbortSignal.timeout(5000))
    await framed.close(AbortSignal.timeout(5000))
  } catch {
    // the client is gone: nobody to tell
  }
}
