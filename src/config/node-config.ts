import { z } from 'zod'
import { DEVICE_BACKENDS } from '../shared/device-info.js'
import type { DeviceBackend } from '../shared/device-info.js'

/**
 * The one configuration object of a node, produced by `loadNodeConfig` and frozen.
 * Precedence: flags > environment (`EXO_P2P_*`) > config file (JSON) > defaults below.
 */
export interface NodeConfig {
  /** Human-readable node name. Defaults to the host name. */
  readonly name: string
  /** Identity key, config file, models. Defaults to `~/.exo-p2p`. */
  readonly dataDir: string
  /** Address the p2p and HTTP listeners bind to. Defaults to `0.0.0.0` (all interfaces). */
  readonly host: string
  /** HTTP API port; 0 = pick a free one. Defaults to 52415. */
  readonly httpPort: number
  /** libp2p TCP port; 0 = pick a free one. Defaults to 4001. */
  readonly p2pPort: number
  /** Static peers (multiaddrs), redialled while not connected. Defaults to none. */
  readonly peers: readonly string[]
  /** Cluster key (64 hex digits) read from the key file; undefined = open mesh. Defaults to none. */
  readonly clusterKeyHex: string | undefined
  /** Path of the cluster key file the key came from (for messages). */
  readonly clusterKeyFile: string | undefined
  /** mDNS discovery on the LAN. Defaults to on. */
  readonly mdns: boolean
  /** Memory offered for model shards, bytes. Defaults to half of the host's memory. */
  readonly memoryBudgetBytes: number
  /** Models (GGUF paths or ids) this node holds. Defaults to none. */
  readonly models: readonly string[]
  /** pino level. Defaults to `info`. */
  readonly logLevel: string
  /** When set, every HTTP route but the dashboard's static files requires it (Bearer or x-api-key). Defaults to none (open API). */
  readonly apiKey: string | undefined
  /** With apiKey: GET /metrics answers without it (scrapers on a trusted network). Defaults to off. */
  readonly metricsPublic: boolean
  /** CPU threads per loaded shard. Defaults to 1 (node-llama-cpp-sized models collapse with more on small hosts). */
  readonly threads: number
  /** Flash attention in every forward pass; must be the same on every stage. Defaults to on (as llama.cpp's auto on CPU). */
  readonly flashAttention: boolean
  /** Cap on fetching model layers from peers, bytes/s; undefined = no cap. Defaults to none. */
  readonly fetchMaxBytesPerSec: number | undefined
  /** A node fetching its layers from peers also fetches the rest of the file (after them, at the lowest priority), then holds the model. Defaults to off. */
  readonly fetchWhole: boolean
  /** Compute backend: the best installed GPU backend with a device (`auto`), one by name, or `cpu`. Defaults to `auto`. */
  readonly gpu: GpuSetting
  /** Index of the GPU device among the backend's devices. Defaults to 0. */
  readonly gpuDevice: number
  /** How many of this node's layers go to the GPU (its last ones); `auto` = as many as fit the device's free memory. Defaults to `auto`. */
  readonly gpuLayers: number | 'auto'
  /** Sequences this node runs at once; undefined = derived from the memory budget (KV per sequence). */
  readonly maxSequences: number | undefined
  /** Requests that wait for a slot beyond maxSequences (more → HTTP 429); undefined = as many as the limit. */
  readonly maxQueue: number | undefined
  /** Cap on the KV of finished requests kept for prefix reuse, bytes (0 = none); undefined = what the memory budget leaves. */
  readonly prefixCacheBytes: number | undefined
  /** TEST ONLY (`EXO_P2P_TEST_TAMPER_WEIGHTS`): serve model chunks with a flipped byte. Defaults to off. */
  readonly testTamperWeights: boolean
  /**
   * TEST ONLY (`EXO_P2P_TEST_MS_PER_LAYER`): the decode ms per layer this node announces instead of measuring it
   * (benchmarks on a shared machine, whose plans must not follow the noise of each node's speed probe).
   */
  readonly testMsPerLayer: number | undefined
  /** Config file that was read, if any. */
  readonly configFile: string | undefined
}

/** Flags as the CLI passes them (all optional; undefined = not given). */
export interface NodeConfigFlags {
  name?: string
  dataDir?: string
  host?: string
  httpPort?: string | number
  p2pPort?: string | number
  peer?: string[]
  clusterKey?: string
  mdns?: boolean
  memoryBudget?: string | number
  model?: string[]
  logLevel?: string
  config?: string
  apiKey?: string
  metricsPublic?: boolean
  threads?: string | number
  flashAttention?: boolean
  fetchMaxRate?: string | number
  fetchWhole?: boolean
  gpu?: string
  gpuDevice?: string | number
  gpuLayers?: string | number
  maxSequences?: string | number
  maxQueue?: string | number
  prefixCacheMb?: string | number
}

/** `--gpu`: a backend of src/shared/device-info.ts, or auto. */
export type GpuSetting = 'auto' | DeviceBackend
export const GPU_SETTINGS: readonly GpuSetting[] = ['auto', ...DEVICE_BACKENDS]

const port = z.coerce.number().int().min(0).max(65535)

/** Schema of one source's raw values (flags, env or file) after renaming to the file's keys. */
export const rawConfigSchema = z.object({
  name: z.string().min(1).max(64).optional(),
  dataDir: z.string().min(1).optional(),
  host: z.string().min(1).max(255).optional(),
  httpPort: port.optional(),
  p2pPort: port.optional(),
  peers: z.array(z.string().min(1).max(512)).max(256).optional(),
  clusterKeyFile: z.string().min(1).optional(),
  mdns: z.boolean().optional(),
  memoryBudgetMb: z.coerce.number().int().min(1).max(1 << 30).optional(),
  models: z.array(z.string().min(1)).max(256).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  apiKey: z.string().min(1).max(1024).optional(),
  metricsPublic: z.boolean().optional(),
  threads: z.coerce.number().int().min(1).max(256).optional(),
  flashAttention: z.boolean().optional(),
  fetchMaxRateMb: z.coerce.number().positive().max(1e6).optional(),
  fetchWhole: z.boolean().optional(),
  gpu: z.enum(['auto', 'cuda', 'vulkan', 'metal', 'cpu']).optional(),
  gpuDevice: z.coerce.number().int().min(0).max(255).optional(),
  gpuLayers: z.union([z.literal('auto'), z.coerce.number().int().min(0).max(1 << 20)]).optional(),
  maxSequences: z.coerce.number().int().min(1).max(4096).optional(),
  maxQueue: z.coerce.number().int().min(0).max(65536).optional(),
  prefixCacheMb: z.coerce.number().int().min(0).max(1 << 30).optional(),
  testTamperWeights: z.boolean().optional(),
  testMsPerLayer: z.coerce.number().positive().max(1000).optional()
}).strict()

export type RawConfig = z.infer<typeof rawConfigSchema>

export const DEFAULT_HTTP_PORT = 52415
export const DEFAULT_P2P_PORT = 4001
export const DEFAULT_HOST = '0.0.0.0'
