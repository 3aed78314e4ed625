import type { Connection, Stream, StreamHandler } from '@libp2p/interface'
import { AbortedError } from '../../shared/errors/exo-error.js'
import { ActivationErrorCode, ActivationStageError, ProtocolDecodeError } from '../../shared/errors/protocol-errors.js'
import { createLogger } from '../../shared/log.js'
import type { Logger } from '../../shared/log.js'
import { FramedStream } from '../framed-stream.js'
import { channelFromFramed } from './channel.js'
import type { ActivationChannel } from './channel.js'
import { decodeActivationFrame, encodeActivationFrame } from './codec.js'
import type { OpenFrame } from './codec.js'
import { MAX_FRAME_BYTES, OPEN_DEADLINE_MS } from './constants.js'

/** What the activations handler calls: the node's stage runner. */
export interface ActivationsPort {
  /**
   * Serves one inbound hop after a valid OPEN. Refuse by throwing `ActivationStageError` (e.g.
   * PLAN_MISMATCH): the handler sends it as ERROR. `signal` aborts when the stream is reset/closed
   * by the peer or the connection drops; the port must then free the request's session. Resolve
   * when the hop is done (after END).
   */
  serve (open: OpenFrame, channel: ActivationChannel, context: { remotePeer: string, signal: AbortSignal }): Promise<void>
}

export interface ActivationsHandlerOptions {
  /** Defaults to OPEN_DEADLINE_MS (10 s). */
  openDeadlineMs?: number
  log?: Logger
  /**
   * Called once per stream this node refuses as the deciding stage: its port threw a local
   * `ActivationStageError` (PLAN_MISMATCH, NOT_READY, …; not one relayed from downstream, whose `cause`
   * is the downstream's error) or a frame was malformed (MALFORMED). For /metrics.
   */
  onRefusal?: (code: ActivationErrorCode) => void
}

/**
 * Listener side of protocols/activations.md: `libp2p.handle(ACTIVATIONS_PROTOCOL, createActivationsHandler(port))`.
 * Reads and validates OPEN, then hands the stream to the port. Malformed input → ERROR MALFORMED
 * and reset; an oversized length prefix → reset at once. Never throws.
 */
export function createActivationsHandler (port: ActivationsPort, options: ActivationsHandlerOptions = {}): StreamHandler {
  const log = options.log ?? createLogger('protocols:activations')
  const deadline = options.openDeadlineMs ?? OPEN_DEADLINE_MS
  return async (stream: Stream, connection: Connection) => {
    await serve(stream, connection.remotePeer.toString(), port, deadline, log, options.onRefusal)
  }
}

async function serve (stream: Stream, remotePeer: string, port: ActivationsPort, deadlineMs: number, log: Logger, onRefusal?: (code: ActivationErrorCode) => void): Promise<void> {
  const framed = new FramedStream(stream, MAX_FRAME_BYTES)
  const gone = new AbortController()
  let finished = false
  const onClose = (): void => { if (!finished) gone.abort(new AbortedError('activation stream closed by the peer')) }
  stream.addEventListener('close', onClose)
  let open: OpenFrame
  try {
    const raw = await framed.next({ signal: gone.signal, timeoutMs: deadlineMs })
    if (raw === undefined) throw new ProtocolDecodeError('stream closed before OPEN')
    const f = decodeActivationFrame(raw)
    if (f.type !== 'open') throw new ProtocolDecodeError(`first frame is ${f.type}, not OPEN`)
    open = f
  } catch (err) {
    /** no valid OPEN: say why when possible, then reset; nothing was allocated */
    log.debug({ err, remotePeer }, 'activation stream refused before OPEN')
    finished = true
    if (err instanceof ProtocolDecodeError) onRefusal?.(ActivationErrorCode.Malformed)
    if (err instanceof ProtocolDecodeError && !framed.isClosed) await sendError(framed, ActivationErrorCode.Malformed, err.message)
    framed.abort(err as Error)
    stream.removeEventListener('close', onClose)
    return
  }
  const channel = channelFromFramed(framed, open)
  try {
    await port.serve(open, channel, { remotePeer, signal: gone.signal })
    finished = true
    if (!channel.isClosed) await channel.close()
  } catch (err) {
    /** every failure of a hop ends here: the peer learns the code, then the stream is reset */
    finished = true
    if (err instanceof ActivationStageError && !err.remote && !(err.cause instanceof ActivationStageError)) onRefusal?.(err.wireCode)
    else if (err instanceof ProtocolDecodeError) onRefusal?.(ActivationErrorCode.Malformed)
    if (gone.signal.aborted || channel.isClosed) {
      channel.abort(new AbortedError('activation stream closed'))
    } else if (err instanceof ActivationStageError && !err.remote) {
      log.debug({ err, requestId: open.requestId }, 'activation stream refused')
      await channel.fail(err.wireCode, err.message)
    } else if (err instanceof ProtocolDecodeError) {
      await channel.fail(ActivationErrorCode.Malformed, err.message)
      channel.abort(err)
    } else {
      log.warn({ err, requestId: open.requestId }, 'activation stream failed')
      await channel.fail(ActivationErrorCode.Internal, (err as Error).message ?? String(err))
      channel.abort(err as Error)
    }
  } finally {
    stream.removeEventListener('close', onClose)
  }
}

async function sendError (framed: FramedStream, code: ActivationErrorCode, message: string): Promise<void> {
  try {
    await framed.send(encodeActivationFrame({ type: 'error', code, message }), AbortSignal.timeout(5000))
  } catch {
    // the peer is gone
  }
}
