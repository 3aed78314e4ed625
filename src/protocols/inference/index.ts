/**
 * `/exo-p2p/inference/1.1.0` — API node → first stage: one InferenceRequest per stream, GenerationEvents back.
 * @packageDocumentation spec: protocols/inference.md
 */
export { INFERENCE_PROTOCOL, MAX_EVENT_BYTES, MAX_REQUEST_BYTES, REQUEST_DEADLINE_MS } from './constants.js'
export { decodeRequestFrame, decodeServerFrame, encodeRequestFrame, encodeServerFrame } from './codec.js'
export type { InferenceServerFrame } from './codec.js'
export { requestInference } from './client.js'
export { createInferenceHandler } from './handler.js'
export type { InferenceHandlerOptions, InferencePort } from './handler.js'
