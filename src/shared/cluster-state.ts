import type { DeviceInfo } from './device-info.js'

/**
 * JSON shape of `GET /cluster/state` (and the data `exo-p2p peers`, `exo-p2p plan` and the dashboard read).
 * Produced by src/node from the mesh's view and the agreed plan. Times are ms; sizes are bytes.
 */
export interface ClusterStateJson {
  self: { peerId: string, name: string, httpUrl: string, addresses: string[] }
  /** canonical view: sorted by peerId, self included */
  members: MemberJson[]
  /** measured links, one per ordered pair that has a measurement */
  links: LinkJson[]
  /** hash of the canonical view (hex) */
  viewHash: string
  /** the agreed shard plan, or why there is none (absent until the planner is wired in) */
  plan?: PlanJson | null
  planReason?: string
  /** model pulls from the Hub running on (or recently finished by) the node serving this JSON; absent when none */
  downloads?: DownloadJson[]
}

/** One pull (`POST /api/pull`, `start --model org/repo:Q`) of the node serving the JSON. */
export interface DownloadJson {
  /** the reference asked for, e.g. `hf.co/org/repo:Q8_0` */
  ref: string
  /** model id, once the files are known */
  id?: string
  /** the file being downloaded (of a split model: the current part) */
  file?: string
  completed: number
  total: number
  state: 'resolving' | 'downloading' | 'verifying' | 'done' | 'failed'
  error?: string
  /** ms since the last change */
  updatedMsAgo: number
}

export interface MemberJson {
  peerId: string
  name: string
  state: 'alive' | 'suspect'
  addresses: string[]
  httpUrl: string
  capabilities: {
    memoryBudgetBytes: number
    freeMemoryBytes: number
    cpuCores: number
    /** 'cpu' | 'cuda' | 'vulkan' | 'metal' */
    backend: string
    /** measured compute: ms per token per layer-equivalent unit (lower is faster), 0 = not measured */
    computeMsPerUnit: number
  }
  models: Array<{ id: string, sizeBytes: number }>
  shards: Array<{ model: string, start: number, end: number, ready: boolean, planId?: string }>
  queueLength: number
  /** the node's compute devices (GPUs) as announced (protocols/membership.md `devices`); absent when it has none */
  devices?: DeviceInfo[]
  /** partial copies fetched from peers (protocols/weights.md): bytes verified of those wanted, layers covered */
  partials?: Array<{ id: string, sizeBytes: number, verifiedBytes: number, targetBytes: number, layers: Array<[number, number]> }>
  /** ms since the last announcement was received (0 for self) */
  lastSeenMsAgo: number
  /** RTT measured from the node serving this JSON to this member (ms), absent for self or unknown */
  rttMs?: number
}

export interface LinkJson {
  from: string
  to: string
  rttMs: number
  /** bytes/s estimate, 0 = unknown */
  bandwidthBytesPerSec: number
}

export interface PlanJson {
  id: string
  model: string
  ready: boolean
  predictedMsPerToken: number
  measuredMsPerToken?: number
  stages: Array<{
    peerId: string
    name: string
    start: number
    end: number
    ready: boolean
    /** 0..1 while loading */
    loadProgress?: number
    predictedMs?: number
    /** the stage's last `gpuLayers` layers run on its node's device, taking `deviceBytes` of device memory */
    gpuLayers?: number
    deviceBytes?: number
    /** the stage's node fetches its layers from peers: weight bytes, predicted time, progress so far */
    fetch?: { bytes: number, loadMs?: number, verifiedBytes: number, targetBytes: number }
  }>
}
