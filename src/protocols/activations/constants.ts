/** protocols/activations.md "Limits" */
export const ACTIVATIONS_PROTOCOL = '/exo-p2p/activations/1.2.0'
/** Hard limit of one frame (type + body); larger → stream reset. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024
/** Senders split prefill so every PREFILL tensor payload is ≤ this. */
export const PREFILL_CHUNK_BYTES = 1024 * 1024
/** Upper bound of tokens in one PREFILL chunk (keeps one chunk's compute short). */
export const PREFILL_CHUNK_MAX_TOKENS = 512
export const MAX_TOKENS_PER_FRAME = 4096
export const MAX_OPEN_BYTES = 1024 * 1024
export const MAX_ERROR_MESSAGE_BYTES = 1024
export const MAX_RECENT_TOKENS = 4096
/** OPEN `resumedTokens` (failover) */
export const MAX_RESUMED_TOKENS = 1 << 20
export const MAX_CONTEXT_SIZE = 1 << 24
export const MAX_REQUEST_ID_BYTES = 128
/** The listener resets a stream whose OPEN has not arrived by then. */
export const OPEN_DEADLINE_MS = 10_000
/** yamux per-stream window recommended on a LAN (bounds head-of-line blocking). */
export const RECOMMENDED_YAMUX_WINDOW_BYTES = 1024 * 1024

export enum ActivationFrameType { Open = 1, Prefill = 2, Decode = 3, Result = 4, Error = 5, End = 6 }

/** PREFILL flags */
export const FLAG_LAST = 0x01
