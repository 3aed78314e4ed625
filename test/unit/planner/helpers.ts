import { asModelId, asNodeId } from '../../../src/shared/ids.js'
import type { ModelCard, PlannerMember, PlannerView } from '../../../src/planner/types.js'

export const MB = 1024 * 1024

export function model (nLayers: number, o: Partial<ModelCard> = {}): ModelCard {
  return {
    id: asModelId('test-model'),
    nLayers,
    layerBytes: Array.from({ length: nLayers }, () => 10 * MB),
    embeddingBytes: 4 * MB,
    outputBytes: 4 * MB,
    kvBytesPerTokenPerLayer: 1024,
    contextSize: 1024,
    ...o
  }
}

export function member (peer: string, memoryMb: number, ms: number): PlannerMember {
  return { peerId: asNodeId(peer), name: `node-${peer}`, memoryBudgetBytes: memoryMb * MB, computeMsPerLayer: ms }
}

/** Full RTT matrix with the same value on every link. */
export function view (members: PlannerMember[], rtt = 0.2): PlannerView {
  const rttMs: Record<string, Record<string, number>> = {}
  for (const a of members) {
    rttMs[a.peerId] = {}
    for (const b of members) if (a !== b) rttMs[a.peerId]![b.peerId] = rtt
  }
  return { members, rttMs }
}

/** Memory (bytes) a stage [s, e) needs, computed independently of the planner. */
export function stageBytes (m: ModelCard, s: number, e: number): number {
  let b = 0
  for (let i = s; i < e; i++) b += m.layerBytes[i]!
  if (s === 0) b += m.embeddingBytes
  if (e === m.nLayers) b += m.outputBytes
  for (let i = s; i < e; i++) b += m.kvBytesPerLayer?.[i] ?? m.kvBytesPerTokenPerLayer * m.contextSize
  return b + (m.stageOverheadBytes ?? 0)
}
