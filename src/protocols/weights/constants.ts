/** protocols/weights.md "Limits" */
export const WEIGHTS_PROTOCOL = '/exo-p2p/weights/1.0.0'
/** 1.0.0 plus the bulk path (protocols/weights.md "Bulk path (1.1.0)") */
export const WEIGHTS_BULK_PROTOCOL = '/exo-p2p/weights/1.1.0'
/** what a node handles, and what a fetcher offers, in order of preference */
export const WEIGHTS_PROTOCOLS = [WEIGHTS_BULK_PROTOCOL, WEIGHTS_PROTOCOL]
/** Hard limit of one frame (type + body); larger → stream reset. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024
/** Chunk size every 1.0.0 node uses for its manifests. */
export const CHUNK_BYTES = 4 * 1024 * 1024
export const MIN_CHUNK_BYTES = 64 * 1024
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024
/** manifest hashes of one frame: 131,000 × 32 B = 4,192,000 B */
export const MAX_CHUNKS = 131_000
/** bytes of one DATA frame's piece; every piece but a chunk's last has exactly this size */
export const DATA_PIECE_BYTES = 1024 * 1024
export const MAX_CHUNKS_PER_REQUEST = 16
/** a holder answers BUSY beyond this many streams at once */
export const MAX_SERVING_STREAMS = 8
export const MAX_ERROR_MESSAGE_BYTES = 1024
export const MAX_MODEL_ID_BYTES = 128
/** the holder resets a stream whose request has not arrived by then */
export const REQUEST_DEADLINE_MS = 10_000
/** a fetcher waits this long for a MANIFEST (the holder may be hashing a large file) */
export const MANIFEST_DEADLINE_MS = 600_000

/** one DATA frame of a whole piece (type + chunkIndex + offset + bytes) plus the GCM tag */
export const MAX_BULK_RECORD_BYTES = 1 + 8 + DATA_PIECE_BYTES + 16
export const MIN_BULK_RECORD_BYTES = 17
/** a ticket not presented by then is void */
export const TICKET_DEADLINE_MS = 10_000
/** a fetcher falls back to the libp2p stream when the bulk connection is not up by then */
export const BULK_CONNECT_TIMEOUT_MS = 3_000
/** bulk connections a holder keeps open at once (transfers and connections waiting for their HELLO); more are closed */
export const MAX_BULK_CONNECTIONS = 64
/** HELLO: ticketId (16) + HMAC-SHA256 (32) */
export const BULK_HELLO_BYTES = 48

export enum WeightsFrameType { ManifestRequest = 1, Manifest = 2, RangeRequest = 3, Data = 4, Error = 5, BulkRangeRequest = 6, BulkTicket = 7 }

export enum Provenance { Hub = 1, Local = 2 }
