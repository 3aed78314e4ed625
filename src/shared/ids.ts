/** Branded identifiers: a PeerId string cannot be passed where a RequestId is expected. */
declare const brand: unique symbol
export type Brand<T, B extends string> = T & { readonly [brand]: B }

/** libp2p PeerId in its base58/CID string form. */
export type NodeId = Brand<string, 'NodeId'>
/** Unique per inference request, chosen by the API node (e.g. `req_<hex>`). */
export type RequestId = Brand<string, 'RequestId'>
/** Stable model id as listed by `/v1/models` (e.g. `stories260k-f32`). */
export type ModelId = Brand<string, 'ModelId'>
/** Hex hash identifying one shard plan (canonical input + output). */
export type PlanId = Brand<string, 'PlanId'>

export const asNodeId = (s: string): NodeId => s as NodeId
export const asRequestId = (s: string): RequestId => s as RequestId
export const asModelId = (s: string): ModelId => s as ModelId
export const asPlanId = (s: string): PlanId => s as PlanId
