/** protocols/inference.md */
export const INFERENCE_PROTOCOL = '/exo-p2p/inference/1.1.0'
/** Limit of client → server frames (REQUEST). */
export const MAX_REQUEST_BYTES = 8 * 1024 * 1024
/** Limit of server → client frames (TOKEN, DONE, ERROR). */
export const MAX_EVENT_BYTES = 1024 * 1024
/** The server resets a stream whose REQUEST has not arrived by then. */
export const REQUEST_DEADLINE_MS = 10_000

export enum InferenceFrameType { Request = 1, Token = 2, Done = 3, Error = 4 }
