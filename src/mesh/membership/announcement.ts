import { z } from 'zod'
import { InvalidAnnouncementError } from '../../shared/errors/mesh-errors.js'
import { RTT_CLASSES_MS } from './quantise.js'
import { DEVICE_BACKENDS } from '../../shared/device-info.js'
import type { DeviceBackend } from '../../shared/device-info.js'
import { MAX_DEVICES, MAX_LIST_ITEMS, MAX_MESSAGE_BYTES, MESSAGE_VERSION } from './constants.js'

/** Wire schema of protocols/membership.md "Messages". Unknown fields are stripped (1.x may add some). */
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const peerIdString = z.string().min(1).max(128)

const capabilitiesSchema = z.object({
  memoryBudgetBytes: count,
  freeMemoryBytes: count,
  cpuCores: z.number().int().min(1).max(4096),
  backend: z.enum(['cpu', 'cuda', 'vulkan', 'metal']),
  computeMsPerUnit: z.number().min(0).max(1e9)
})

/** since 1.3: one compute device of the node (src/shared/device-info.ts) */
const deviceSchema = z.object({
  backend: z.enum(DEVICE_BACKENDS as [DeviceBackend, ...DeviceBackend[]]),
  name: z.string().max(128),
  totalBytes: count,
  freeBytes: count,
  budgetBytes: count,
  computeMsPerLayer: z.number().min(0).max(1000),
  maxLayers: z.number().int().min(0).max(4096).optional()
})

const shardSchema = z.object({
  model: z.string().min(1).max(128),
  start: count,
  end: count,
  ready: z.boolean(),
  planId: z.string().max(128).optional()
}).refine((s) => s.start < s.end, 'shard start must be < end')

const linkSchema = z.object({
  peerId: peerIdString,
  rttMs: z.number().min(0).max(1e6),
  rttClassMs: z.number().refine((c) => RTT_CLASSES_MS.includes(c), 'rttClassMs must be a class of the 1-2-5 series'),
  bandwidthBytesPerSec: z.number().min(0).max(1e13)
})

const planStageSchema = z.object({
  peerId: peerIdString,
  name: z.string().max(64),
  start: count,
  end: count,
  computeMs: z.number().min(0).max(1e9),
  memoryBytes: count,
  /** since 1.2: the stage's node fetches its layers from peers (bytes) in about `loadMs` */
  fetchBytes: count.optional(),
  loadMs: z.number().min(0).max(1e12).optional(),
  /** since 1.3: how many of the stage's layers (its last ones, as llama.cpp offloads) run on the node's device, and their device bytes */
  gpuLayers: count.optional(),
  deviceBytes: count.optional()
})

/** The planner's Plan as JSON (protocols/membership.md "pipeline"): contiguous half-open ranges [0, nLayers). */
const planSchema = z.object({
  kind: z.literal('plan'),
  id: z.string().regex(/^[0-9a-f]{64}$/),
  modelId: z.string().min(1).max(128),
  nLayers: z.number().int().min(1).max(4096),
  stages: z.array(planStageSchema).min(1).max(64),
  predictedMsPerToken: z.number().min(0).max(1e9),
  ringRttMs: z.number().min(0).max(1e9)
}).refine((p) => p.stages.every((s, i) => s.start < s.end && s.start === (i === 0 ? 0 : p.stages[i - 1]!.end)) &&
  p.stages[p.stages.length - 1]!.end === p.nLayers, 'plan stages must be contiguous half-open ranges covering [0, nLayers)')

const pipelineSchema = z.object({
  model: z.string().min(1).max(128),
  msPerLayer: z.number().min(0).max(1000),
  flashAttention: z.boolean().optional(),
  plan: planSchema.optional()
})

/** since 1.2: a partial copy of a model fetched from peers (protocols/weights.md) */
const partialSchema = z.object({
  id: z.string().min(1).max(128),
  sizeBytes: count,
  verifiedBytes: count,
  targetBytes: count,
  layers: z.array(z.tuple([count, count]).refine(([s, e]) => s < e, 'layer range start must be < end')).max(64)
})

export const announceSchema = z.object({
  v: z.literal(MESSAGE_VERSION),
  kind: z.literal('announce'),
  peerId: peerIdString,
  epoch: count,
  seq: count,
  name: z.string().min(1).max(64),
  addresses: z.array(z.string().min(1).max(256)).max(16),
  httpUrl: z.string().max(256),
  capabilities: capabilitiesSchema,
  models: z.array(z.object({ id: z.string().min(1).max(128), sizeBytes: count })).max(MAX_LIST_ITEMS),
  shards: z.array(shardSchema).max(MAX_LIST_ITEMS),
  queueLength: count,
  links: z.array(linkSchema).max(MAX_LIST_ITEMS),
  /** optional since 1.1 */
  pipeline: pipelineSchema.optional(),
  /** optional since 1.2 */
  partials: z.array(partialSchema).max(16).optional(),
  /** optional since 1.3 */
  devices: z.array(deviceSchema).max(MAX_DEVICES).optional()
})

export const leaveSchema = z.object({
  v: z.literal(MESSAGE_VERSION),
  kind: z.literal('leave'),
  peerId: peerIdString,
  epoch: count,
  seq: count
})

const messageSchema = z.discriminatedUnion('kind', [announceSchema, leaveSchema])

export type Announcement = z.infer<typeof announceSchema>
export type LeaveMessage = z.infer<typeof leaveSchema>
export type MembershipMessage = Announcement | LeaveMessage
export type Capabilities = Announcement['capabilities']
export type LinkMeasurement = Announcement['links'][number]
export type AnnouncedPipeline = NonNullable<Announcement['pipeline']>
export type AnnouncedPlan = NonNullable<AnnouncedPipeline['plan']>
export type AnnouncedPartial = NonNullable<Announcement['partials']>[number]
export type AnnouncedDevice = NonNullable<Announcement['devices']>[number]

/** What gossipsub tells the validator about a message: its bytes and the signer (`from`), if signed. */
export interface ReceivedGossip {
  data: Uint8Array
  /** peer id string of the signer; undefined for an unsigned message */
  from: string | undefined
}

/**
 * Validates one received gossip message (protocols/membership.md "Validation"). Pure.
 * Throws InvalidAnnouncementError with the reason.
 */
export function decodeMembershipMessage (msg: ReceivedGossip): MembershipMessage {
  if (msg.from === undefined) throw new InvalidAnnouncementError('unsigned', 'message has no signer')
  if (msg.data.byteLength > MAX_MESSAGE_BYTES) {
    throw new InvalidAnnouncementError('oversized', `${msg.data.byteLength} bytes > ${MAX_MESSAGE_BYTES}`)
  }
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(msg.data))
  } catch (err) {
    throw new InvalidAnnouncementError('malformed', `not UTF-8 JSON (${(err as Error).message.slice(0, 80)})`)
  }
  const parsed = messageSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidAnnouncementError('malformed', `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`)
  }
  if (parsed.data.peerId !== msg.from) {
    throw new InvalidAnnouncementError('foreign', `peerId ${parsed.data.peerId} published by ${msg.from}`)
  }
  return parsed.data
}

/** Encodes a message for publishing; throws InvalidAnnouncementError if it would not pass validation. */
export function encodeMembershipMessage (msg: MembershipMessage): Uint8Array {
  const checked = messageSchema.safeParse(msg)
  if (!checked.success) {
    const issue = checked.error.issues[0]
    throw new InvalidAnnouncementError('malformed', `own message ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`)
  }
  const bytes = new TextEncoder().encode(JSON.stringify(msg))
  if (bytes.byteLength > MAX_MESSAGE_BYTES) {
    throw new InvalidAnnouncementError('oversized', `own message ${bytes.byteLength} bytes > ${MAX_MESSAGE_BYTES}`)
  }
  return bytes
}
