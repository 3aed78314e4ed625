import { ExoError } from './exo-error.js'

/** Bytes received on a protocol stream that are not a valid frame (protocols/*.md). */
export class ProtocolDecodeError extends ExoError {
  readonly code: string = 'PROTOCOL_DECODE'
}

/** A frame's length prefix is 0 or above the receiver's limit; the stream cannot be resynchronised. */
export class FrameTooLargeError extends ProtocolDecodeError {
  override readonly code: string = 'PROTOCOL_FRAME_TOO_LARGE'
  constructor (readonly frameBytes: number, readonly maxFrameBytes: number) {
    super(frameBytes === 0
      ? 'frame length 0 is invalid (a frame has at least its type byte)'
      : `frame of ${frameBytes} bytes exceeds the limit of ${maxFrameBytes} bytes`)
  }
}

/** A frame that cannot be encoded (value out of range, oversized body). A bug of the caller. */
export class ProtocolEncodeError extends ExoError {
  readonly code = 'PROTOCOL_ENCODE'
}

/** The stream closed or was reset before the exchange completed. */
export class StreamEndedError extends ExoError {
  readonly code = 'PROTOCOL_STREAM_ENDED'
}

/** The peer did not send an expected frame in time. */
export class ProtocolTimeoutError extends ExoError {
  readonly code = 'PROTOCOL_TIMEOUT'
}

/**
 * A failure the first stage reported on the inference protocol (ERROR frame). `code` is the remote
 * ExoError code (e.g. `NO_PLAN`), so callers map it exactly like the same failure raised locally.
 */
export class RemoteInferenceError extends ExoError {
  readonly code: string
  constructor (readonly remoteCode: string, message: string) {
    super(`remote: ${message}`)
    this.code = remoteCode
  }
}

/** Wire error codes of protocols/activations.md (ERROR frame). */
export enum ActivationErrorCode {
  PlanMismatch = 1,
  NotReady = 2,
  StageMismatch = 3,
  Malformed = 4,
  BadPosition = 5,
  ContextFull = 6,
  ShapeMismatch = 7,
  DuplicateRequest = 8,
  Busy = 9,
  Cancelled = 10,
  Internal = 11,
  /** since 1.2.0: OPEN's `prefix` names KV this stage does not retain */
  PrefixMissing = 12
}

const ACTIVATION_CODE_NAMES: Record<ActivationErrorCode, string> = {
  [ActivationErrorCode.PlanMismatch]: 'PLAN_MISMATCH',
  [ActivationErrorCode.NotReady]: 'NOT_READY',
  [ActivationErrorCode.StageMismatch]: 'STAGE_MISMATCH',
  [ActivationErrorCode.Malformed]: 'MALFORMED',
  [ActivationErrorCode.BadPosition]: 'BAD_POSITION',
  [ActivationErrorCode.ContextFull]: 'CONTEXT_FULL',
  [ActivationErrorCode.ShapeMismatch]: 'SHAPE_MISMATCH',
  [ActivationErrorCode.DuplicateRequest]: 'DUPLICATE_REQUEST',
  [ActivationErrorCode.Busy]: 'BUSY',
  [ActivationErrorCode.Cancelled]: 'CANCELLED',
  [ActivationErrorCode.Internal]: 'INTERNAL',
  [ActivationErrorCode.PrefixMissing]: 'PREFIX_MISSING'
}

/** Name of a wire code (`PLAN_MISMATCH`); unknown codes read as `INTERNAL`. */
export function activationErrorName (code: number): string {
  return ACTIVATION_CODE_NAMES[code as ActivationErrorCode] ?? 'INTERNAL'
}

/**
 * A stage refused or failed a request on the activations protocol. Thrown by stage ports to refuse
 * (the handler sends it as an ERROR frame) and raised by channels when the peer sent ERROR
 * (`remote` = true). `code` is `ACTIVATIONS_<NAME>`, e.g. `ACTIVATIONS_PLAN_MISMATCH`.
 */
export class ActivationStageError extends ExoError {
  readonly code: string
  constructor (readonly wireCode: ActivationErrorCode, message: string, readonly remote = false, options?: { cause?: unknown }) {
    super(remote ? `remote stage: ${message}` : message, options)
    this.code = `ACTIVATIONS_${activationErrorName(wireCode)}`
  }
}

/** Wire error codes of protocols/weights.md (ERROR frame). */
export enum WeightsErrorCode {
  UnknownModel = 1,
  FileChanged = 2,
  BadRange = 3,
  Malformed = 4,
  Busy = 5,
  Internal = 6
}

const WEIGHTS_CODE_NAMES: Record<WeightsErrorCode, string> = {
  [WeightsErrorCode.UnknownModel]: 'UNKNOWN_MODEL',
  [WeightsErrorCode.FileChanged]: 'FILE_CHANGED',
  [WeightsErrorCode.BadRange]: 'BAD_RANGE',
  [WeightsErrorCode.Malformed]: 'MALFORMED',
  [WeightsErrorCode.Busy]: 'BUSY',
  [WeightsErrorCode.Internal]: 'INTERNAL'
}

/** Name of a weights wire code; unknown codes read as `INTERNAL`. */
export function weightsErrorName (code: number): string {
  return WEIGHTS_CODE_NAMES[code as WeightsErrorCode] ?? 'INTERNAL'
}

/**
 * A holder refused or failed a weights request (protocols/weights.md ERROR). Thrown by weight sources
 * to refuse (the handler sends it as ERROR) and raised by the client when the holder sent ERROR
 * (`remote` = true). `code` is `WEIGHTS_<NAME>`, e.g. `WEIGHTS_FILE_CHANGED`.
 */
export class WeightsRequestError extends ExoError {
  readonly code: string
  constructor (readonly wireCode: WeightsErrorCode, message: string, readonly remote = false, options?: { cause?: unknown }) {
    super(remote ? `remote holder: ${message}` : message, options)
    this.code = `WEIGHTS_${weightsErrorName(wireCode)}`
  }
}

/** A chunk received on the weights protocol does not match the manifest's SHA-256 (or its length). */
export class ChunkVerificationError extends ExoError {
  readonly code = 'WEIGHTS_BAD_CHUNK'
  constructor (readonly chunkIndex: number, message: string) { super(message) }
}

/**
 * The bulk path of the weights protocol (protocols/weights.md "Bulk path (1.1.0)") did not work with a
 * holder: no connection (refused, timeout), HELLO refused, a record that failed to open (tampered
 * or corrupted on the way), or the fetcher's bulk worker thread failed to load or crashed. The fetcher falls back to the libp2p stream for that holder.
 */
export class BulkPathError extends ExoError {
  readonly code = 'WEIGHTS_BULK_FAILED'
  constructor (readonly reason: 'connect' | 'refused' | 'record' | 'worker', message: string, options?: { cause?: unknown }) { super(message, options) }
}
