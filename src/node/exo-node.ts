import '../shared/polyfills.js'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createHttpApp } from '../api/app.js'
import type { NodeConfig } from '../config/node-config.js'
import { looseSecretFileMode } from '../config/cluster-key-file.js'
import { createLogger } from '../shared/log.js'
import { throwIfAborted } from '../shared/errors/exo-error.js'
import { MeshStartError } from '../shared/errors/mesh-errors.js'
import { HttpListenError } from '../shared/errors/exo-node-errors.js'
import type { InferenceService } from '../shared/inference.js'
import type { ClusterStateJson } from '../shared/cluster-state.js'
import { createMeshLibp2p } from '../mesh/create-libp2p.js'
import type { MeshLibp2p } from '../mesh/create-libp2p.js'
import { PEER_KEY_FILE, loadOrCreatePeerKey } from '../mesh/peer-identity.js'
import { LinkProber } from '../mesh/link-prober.js'
import { PeerDialer } from '../mesh/peer-dialer.js'
import { PeerBans } from '../mesh/peer-bans.js'
import { PeerGuard } from '../mesh/peer-guard.js'
import { BAN_COOL_OFF_MS } from '../mesh/gossip-scoring.js'
import { MembershipService } from '../mesh/membership/membership-service.js'
import type { LocalInfo } from '../mesh/membership/membership-service.js'
import type { DeviceInfo } from '../shared/device-info.js'
import type { GpuOffload } from './gpu-offload.js'
import { canonicalView } from '../mesh/membership/canonical-view.js'
import type { CanonicalView } from '../mesh/membership/canonical-view.js'
import { NoEngineInferenceService } from './no-engine-inference-service.js'
import { advertisedHost, findLocalModels, sampleCapabilities, storeModels } from './local-info.js'
import { LocalModelsWatch } from './local-models-watch.js'
import { NodeModelPuller } from './model-puller.js'
import { buildClusterState } from './cluster-state-json.js'
import { BUNDLED_MODEL_PATH } from './model-registry.js'
import { registerMeshMetrics } from './mesh-metrics.js'
import { CountingInferenceService, registerInferenceMetrics } from './counting-inference-service.js'
import { createNodeRegistry } from './metrics/prom.js'
import type { ShardEngine } from './shard-engine.js'
import type { LocalInferenceService } from './local-inference-service.js'
import { startPipeline } from './pipeline/start-pipeline.js'
import type { NodePipeline } from './pipeline/start-pipeline.js'
import { registerPipelineMetrics } from './pipeline/pipeline-metrics.js'
import { registerServingMetrics } from './metrics/serving-metrics.js'
import { sumPrefixStats } from './prefix-reuse.js'
import type { AdmissionStats } from './admission-gate.js'

export interface ExoNodeOptions {
  version: string
  /** generation backend; defaults to a placeholder that fails with NoEngineError */
  inference?: InferenceService
  /** measured compute speed hook (ms per token per layer unit), 0 = not measured */
  computeMsPerUnit?: () => number
  /** loaded shards and queue length hooks for the announcement */
  shards?: () => LocalInfo['shards']
  queueLength?: () => number
  /** the compute devices the engine found (announced as `devices`, protocols/membership.md 1.3); default none */
  devices?: () => DeviceInfo[]
  /**
   * Serve the node's model (its first `--model`, else the bundled default) with the mesh: measure this
   * node's speed, agree on a shard plan with the other nodes, run its stage, route requests into the
   * pipeline. Needs `inference` to be the LocalInferenceService (its registry finds the model).
   */
  pipeline?: { engine: ShardEngine, local: LocalInferenceService, msPerLayer?: number, gpu?: GpuOffload, onDeviceSpeed?: (msPerLayer: number) => void }
}

/** What a started node tells its caller (the CLI prints it). */
export interface ExoNodeInfo {
  peerId: string
  name: string
  httpUrl: string
  p2pAddresses: string[]
  clusterKey: boolean
}

/** Time given to the `leave` message to leave the socket before connections close. */
const LEAVE_FLUSH_MS = 150

/**
 * Composition root: config → libp2p + link prober + membership + dialer + HTTP server.
 * `start()` brings everything up, `stop()` announces leave and tears it down in reverse order.
 */
export class ExoNode {
  private readonly log = createLogger('node')
  private libp2p: MeshLibp2p | undefined
  private prober: LinkProber | undefined
  private membership: MembershipService | undefined
  private dialer: PeerDialer | undefined
  private guard: PeerGuard | undefined
  private server: Server | undefined
  private nodeInfo: ExoNodeInfo | undefined
  /** the node's generation backend, counted for /metrics */
  readonly inference: CountingInferenceService
  /** what `inference` delegates to: the local engine, or the mesh pipeline once started */
  private backend: InferenceService
  /** pulls from the Hub for the HTTP API (Ollama /api/pull, /api/delete) and the dashboard */
  private readonly puller: NodeModelPuller
  private pipeline: NodePipeline | undefined
  /** the models on disk, for the announcement (a model pulled meanwhile is announced) */
  private modelsWatch: LocalModelsWatch | undefined

  constructor (private readonly config: NodeConfig, private readonly options: ExoNodeOptions) {
    this.puller = new NodeModelPuller(config.dataDir, process.env, Date.now, () => { this.modelsWatch?.refresh() })
    this.backend = options.inference ?? new NoEngineInferenceService()
    this.inference = new CountingInferenceService({
      generate: (req, o) => this.backend.generate(req, o),
      countTokens: async (req, o) => await this.backend.countTokens(req, o),
      listModels: async (o) => await this.backend.listModels(o)
    })
  }

  get info (): ExoNodeInfo {
    if (this.nodeInfo === undefined) throw new MeshStartError('node not started')
    return this.nodeInfo
  }

  async start (options: { signal?: AbortSignal } = {}): Promise<ExoNodeInfo> {
    const { config } = this
    throwIfAborted(options.signal)
    for (const file of [config.clusterKeyFile, join(config.dataDir, PEER_KEY_FILE)]) {
      const mode = file !== undefined ? looseSecretFileMode(file) : undefined
      if (mode !== undefined) this.log.warn({ file, mode: `0${mode.toString(8)}` }, `secret file ${file ?? ''} is readable by group or others (mode 0${mode.toString(8)}): run \`chmod 600 ${file ?? ''}\``)
    }
    if (config.clusterKeyHex === undefined) {
      this.log.warn('NO CLUSTER KEY: the mesh is open — anyone who can reach this node\'s port can join it. Create one with `exo-p2p keygen FILE` and start every node with `--cluster-key FILE`.')
    }
    const privateKey = await loadOrCreatePeerKey(config.dataDir)
    const bans = new PeerBans(BAN_COOL_OFF_MS)
    const libp2p = await createMeshLibp2p({ privateKey, host: config.host, port: config.p2pPort, clusterKeyHex: config.clusterKeyHex, mdns: config.mdns, bans })
    this.libp2p = libp2p
    const guard = new PeerGuard(libp2p, bans, createLogger('mesh:peer-guard'))
    this.guard = guard
    guard.start()
    try {
      await libp2p.start()
    } catch (err) {
      const message = (err as Error).message
      const reason = /listen E[A-Z]+[^\n]*/.exec(message)?.[0] ?? message.split('\n')[0] ?? ''
      throw new MeshStartError(`cannot start libp2p on ${config.host}:${config.p2pPort}: ${reason}`, { cause: err })
    }
    throwIfAborted(options.signal)

    // HTTP first: its URL goes into the announcement
    const httpUrlRef = { url: '' }
    // --model files first (the first one found wins an id), then the whole model store; rescanned every 2 s
    let quiet = false
    const scan = (): LocalInfo['models'] => {
      const named = findLocalModels([...config.models, BUNDLED_MODEL_PATH], config.dataDir, quiet ? { warn: () => {} } : this.log)
      quiet = true
      return [...named, ...storeModels(config.dataDir)]
    }
    this.modelsWatch = new LocalModelsWatch(scan, () => {
      this.membership?.announceSoon()
      void this.pipeline?.modelsChanged().catch((err: Error) => { this.log.warn({ err: err.message }, 'serving a model pulled meanwhile failed') })
    })
    const modelsWatch = this.modelsWatch
    const localInfo = (): LocalInfo => ({
      name: config.name,
      httpUrl: httpUrlRef.url,
      capabilities: sampleCapabilities(config.memoryBudgetBytes, this.pipeline?.agreement !== undefined ? () => this.pipeline?.agreement?.computeMsPerLayer ?? 0 : this.options.computeMsPerUnit ?? (() => 0)),
      models: modelsWatch.models,
      shards: this.pipeline?.agreement?.shardsInfo() ?? this.options.shards?.() ?? [],
      queueLength: this.options.queueLength?.() ?? this.inference.stats.inFlight,
      ...(this.pipeline?.agreement !== undefined ? { pipeline: this.pipeline.agreement.pipelineInfo() } : {}),
      ...((p) => p !== undefined ? { partials: [p] } : {})(this.pipeline?.fetchProgress()),
      devices: this.options.devices?.() ?? []
    })
    const registry = createNodeRegistry()
    registerMeshMetrics(registry, () => ({ state: this.clusterState(), stats: this.membershipOrThrow().stats, connections: libp2p.getConnections().length, guard: guard.stats }))
    registerInferenceMetrics(registry, this.inference)
    const app = createHttpApp({
      inference: this.inference,
      clusterState: () => this.clusterState(),
      metrics: async () => await registry.metrics(),
      ...(config.apiKey !== undefined ? { apiKey: config.apiKey } : {}),
      models: this.puller,
      metricsPublic: config.metricsPublic,
      version: this.options.version
    })
    this.server = await listen(app, config.host, config.httpPort)
    const port = (this.server.address() as AddressInfo).port
    httpUrlRef.url = `http://${advertisedHost(config.host)}:${port}`

    this.prober = new LinkProber(libp2p, createLogger('mesh:link-prober'), () => { this.membership?.announceSoon() })
    await this.prober.start()
    const prober = this.prober
    this.membership = new MembershipService({
      libp2p, localInfo, links: () => prober.measurements(), log: createLogger('mesh:membership'), onJoin: () => { this.dialer?.tick() },
      isBanned: (id) => guard.isBanned(id)
    })
    this.membership.start()
    const membership = this.membership
    this.dialer = new PeerDialer(libp2p, config.peers,
      () => [...membership.view().members.values()].map((e) => ({ peerId: e.announcement.peerId, addresses: e.announcement.addresses })),
      createLogger('mesh:dialer'))
    this.dialer.start()
    modelsWatch.start()

    if (this.options.pipeline !== undefined) {
      this.pipeline = await startPipeline({ config, libp2p, membership, ...this.options.pipeline })
      this.backend = this.pipeline.inference
      const pipeline = this.pipeline
      registerPipelineMetrics(registry, pipeline.metrics, () => pipeline.gauges())
    }
    const local = this.options.pipeline?.local
    registerServingMetrics(registry, {
      gates: () => [
        ...(this.pipeline !== undefined ? [['pipeline', this.pipeline.admission.stats] as [string, AdmissionStats]] : []),
        ...(local !== undefined ? [['local', local.admission.stats] as [string, AdmissionStats]] : [])
      ],
      prefix: () => {
        const parts = [this.pipeline?.prefixStats(), local?.prefixStats()].filter((p) => p !== undefined)
        return parts.length === 0 ? undefined : sumPrefixStats(parts.map((p) => ({ stats: p, bytes: p.bytes, size: p.entries })))
      }
    })

    this.nodeInfo = {
      peerId: libp2p.peerId.toString(),
      name: config.name,
      httpUrl: httpUrlRef.url,
      p2pAddresses: libp2p.getMultiaddrs().map((a) => a.toString()),
      clusterKey: config.clusterKeyHex !== undefined
    }
    this.log.info(this.nodeInfo, 'node started')
    return this.nodeInfo
  }

  /** Leaves the mesh cleanly: `leave` on gossip, then connections close, then HTTP. Idempotent. */
  async stop (options: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = options.signal ?? AbortSignal.timeout(5000)
    this.dialer?.stop()
    this.modelsWatch?.stop()
    if (this.pipeline !== undefined) {
      this.backend = this.options.inference ?? new NoEngineInferenceService()
      await this.pipeline.stop().catch((err: Error) => { this.log.warn({ err: err.message }, 'pipeline stop failed') })
      this.pipeline = undefined
    }
    if (this.membership !== undefined) {
      await this.membership.stop({ signal })
      await new Promise((resolve) => setTimeout(resolve, LEAVE_FLUSH_MS))
    }
    await this.prober?.stop().catch(() => {})
    this.guard?.stop()
    await this.libp2p?.stop()
    if (this.server !== undefined) {
      const server = this.server
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
    this.dialer = undefined
    this.guard = undefined
    this.membership = undefined
    this.prober = undefined
    this.libp2p = undefined
    this.server = undefined
    this.log.info('node stopped')
  }

  /** The canonical view and its hash: what the planner takes as input (same on every node once converged). */
  meshView (): { view: CanonicalView, viewHash: string } {
    const membership = this.membershipOrThrow()
    return { view: canonicalView(membership.view()), viewHash: membership.viewHash() }
  }

  clusterState (): ClusterStateJson {
    const membership = this.membershipOrThrow()
    const info = this.info
    const downloads = this.puller.downloads()
    const state = buildClusterState({
      view: membership.view(),
      viewHash: membership.viewHash(),
      now: membership.clock(),
      self: { peerId: info.peerId, name: info.name, httpUrl: info.httpUrl, addresses: this.libp2p?.getMultiaddrs().map((a) => a.toString()) ?? [] },
      ownLinks: this.prober?.measurements() ?? [],
      ...(this.pipeline?.agreement !== undefined ? this.pipeline.agreement.planJson() : {})
    })
    return downloads.length > 0 ? { ...state, downloads } : state
  }

  private membershipOrThrow (): MembershipService {
    if (this.membership === undefined) throw new MeshStartError('node not started')
    return this.membership
  }
}

async function listen (app: ReturnType<typeof createHttpApp>, host: string, port: number): Promise<Server> {
  const server = createServer(app)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => { reject(new HttpListenError(`cannot listen on http://${host}:${port}: ${err.message}`, { cause: err })) })
    server.listen(port, host, () => { resolve() })
  })
  return server
}
