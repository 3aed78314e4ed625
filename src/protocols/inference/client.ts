import type { Stream } from '@libp2p/interface'
import { AbortedError } from '../../shared/errors/exo-error.js'
import { RemoteInferenceError, StreamEndedError } from '../../shared/errors/protocol-errors.js'
import type { GenerationEvent, InferenceRequest } from '../../shared/inference.js'
import { FramedStream } from '../framed-stream.js'
import { decodeServerFrame, encodeRequestFrame } from './codec.js'
import { MAX_EVENT_BYTES } from './constants.js'

/**
 * Client side of protocols/inference.md over an already-open stream (dial it with
 * `libp2p.dialProtocol(firstStage, INFERENCE_PROTOCOL, { signal })`). Yields the events the first
 * stage produces. Aborting `signal`, or leaving the loop early, resets the stream: that is the
 * cancellation the first stage sees. Errors: `RemoteInferenceError` (ERROR frame; `code` = the
 * remote code), `ProtocolDecodeError`, `StreamEndedError`, `AbortedError`.
 */
export async function * requestInference (stream: Stream, request: InferenceRequest, options: { signal: AbortSignal }): AsyncGenerator<GenerationEvent, void, undefined> {
  const { signal } = options
  const framed = new FramedStream(stream, MAX_EVENT_BYTES)
  const onAbort = (): void => { framed.abort(new AbortedError('inference request cancelled by the client')) }
  signal.addEventListener('abort', onAbort, { once: true })
  let finished = false
  try {
    if (signal.aborted) throw new AbortedError('inference request cancelled by the client', { cause: signal.reason })
    await framed.send(encodeRequestFrame(request), signal)
    for (;;) {
      const raw = await framed.next({ signal })
      if (raw === undefined) throw new StreamEndedError(`inference stream for ${request.id} ended before DONE`)
      const frame = decodeServerFrame(raw)
      if (frame.type === 'error') {
        finished = true
        await framed.close()
        throw new RemoteInferenceError(frame.code, frame.message)
      }
      if (frame.event.type === 'done') {
        finished = true
        await framed.close()
        yield frame.event
        return
      }
      yield frame.event
    }
  } catch (err) {
    if (signal.aborted) throw new AbortedError('inference request cancelled by the client', { cause: signal.reason })
    throw err
  } finally {
    signal.removeEventListener('abort', onAbort)
    // an early exit of the consumer, a failure or an abort: reset = cancel on the server
    if (!finished) framed.abort(new AbortedError('inference request cancelled'))
  }
}
