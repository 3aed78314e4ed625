/**
 * `/exo-p2p/activations/1.2.0` — one stream per request and hop around the stage ring.
 * @packageDocumentation spec: protocols/activations.md
 */
export * from './constants.js'
export { decodeActivationFrame, encodeActivationFrame, encodeRequestHeader, PLAN_ID_PATTERN, prefillChunks, prefillChunkTokens } from './codec.js'
export type { ActivationFrame, EndFrame, ErrorFrame, HiddenFrame, KnownRequestHeader, OpenFrame, ResultFrame } from './codec.js'
export { ActivationChannel } from './channel.js'
export type { PayloadFrame } from './channel.js'
export { createActivationsHandler } from './handler.js'
export type { ActivationsHandlerOptions, ActivationsPort } from './handler.js'
