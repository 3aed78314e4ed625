import { readdir, rm } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { createLogger } from '../../shared/log.js'
import { ggufModelName } from '../../shared/split-gguf-name.js'
import type { NodeConfig } from '../../config/node-config.js'
import type { MeshLibp2p } from '../../mesh/create-libp2p.js'
import type { MembershipService } from '../../mesh/membership/membership-service.js'
import { ACTIVATIONS_PROTOCOL, ActivationChannel, createActivationsHandler } from '../../protocols/activations/index.js'
import type { OpenFrame } from '../../protocols/activations/index.js'
import { INFERENCE_PROTOCOL, createInferenceHandler } from '../../protocols/inference/index.js'
import type { WeightsServeStats } from '../../protocols/weights/index.js'
import { LocalWeightsSource } from '../peer-fetch/local-weights-source.js'
import { PeerModelFetch } from '../peer-fetch/peer-model-fetch.js'
import { busyPacer } from '../peer-fetch/busy-pacer.js'
import { handleWeights, weightsDialer } from '../peer-fetch/weights-service.js'
import { ModelStore } from '../../models/model-store.js'
import type { FetchProgress } from '../peer-fetch/peer-model-fetch.js'
import { holdsModel } from './plan-agreement-core.js'
import type { LocalInferenceService } from '../local-inference-service.js'
import { DEFAULT_MODEL_ID, modelIdOfPath } from '../model-registry.js'
import type { ShardEngine } from '../shard-engine.js'
import { MeshInferenceService } from './mesh-inference-service.js'
import { modelCardFromMetadata } from './model-card.js'
import { PlanAgreement } from './plan-agreement.js'
import { PipelineMetrics } from './pipeline-metrics.js'
import type { PipelineGauges } from './pipeline-metrics.js'
import type { HopChannel } from './stage-runner.js'
import type { GpuOffload } from '../gpu-offload.js'
import { AdmissionGate, DEFAULT_SEQUENCES } from '../admission-gate.js'
import type { PrefixTotals } from '../prefix-reuse.js'

const log = createLogger('node:pipeline')
/** Streams per connection and protocol: one per request and hop, so this bounds concurrent requests per link. */
const MAX_STREAMS = 256

export interface StartPipelineInit {
  config: NodeConfig
  libp2p: MeshLibp2p
  membership: MembershipService
  engine: ShardEngine
  local: LocalInferenceService
  /** skip the speed probe (tests) */
  msPerLayer?: number
  /** GPU offload of this node's stages (`--gpu`, `--gpu-layers`); undefined = CPU only */
  gpu?: GpuOffload
  /** the speed probe's ms per layer on the GPU device */
  onDeviceSpeed?: (msPerLayer: number) => void
}

export interface NodePipeline {
  /** undefined when this node holds no model to serve: it routes requests to plans it learns from gossip */
  agreement: PlanAgreement | undefined
  inference: MeshInferenceService
  metrics: PipelineMetrics
  gauges: () => PipelineGauges
  /** the partial copy of the served model this node fetches from peers, if it lacks the file */
  fetchProgress: () => FetchProgress | undefined
  /** the models on disk changed (a pull finished): serve the wanted model if it is whole on disk now */
  modelsChanged: () => Promise<void>
  /** what this node served to fetching peers (protocols/weights.md) */
  weightsServed: WeightsServeStats
  /** admission of the requests this node drives as first stage */
  admission: AdmissionGate
  /** retained KV (prefix reuse) of this node's stages */
  prefixStats: () => PrefixTotals | undefined
  stop: () => Promise<void>
}

/**
 * Wires the pipeline into a started node: picks the model to serve (the first `--model`, else the
 * bundled default), starts plan agreement for it, and registers the activations and inference
 * protocol handlers. A node without that model on disk only routes (to ready plans it hears of).
 */
export async function startPipeline (init: StartPipelineInit): Promise<NodePipeline> {
  const { config, libp2p, membership } = init
  const entries = await init.local.registry.list()
  const wanted = config.models[0]
  const entry = wanted === undefined
    ? entries.find((e) => e.id === DEFAULT_MODEL_ID)
    : entries.find((e) => e.path === resolve(wanted) || e.id === wanted || e.id === modelIdOfPath(wanted))
  const selfId = libp2p.peerId.toString()
  const dialNext = async (peerId: string, open: OpenFrame, signal: AbortSignal): Promise<HopChannel> => {
    const stream = await libp2p.dialProtocol(peerIdFromString(peerId), ACTIVATIONS_PROTOCOL, { signal })
    return await ActivationChannel.dial(stream, open, { signal })
  }
  let agreement: PlanAgreement | undefined
  const makeAgreement = (id: ReturnType<typeof modelIdOfPath>, path: string, prepareRange?: PeerModelFetch['ensureRange']): PlanAgreement => {
    const metadata = init.engine.readMetadata(path)
    return new PlanAgreement({
      selfId,
      model: { id, path, metadata },
      card: modelCardFromMetadata(id, metadata, metadata.contextLength, config.flashAttention),
      engine: init.engine,
      threads: config.threads,
      flashAttention: config.flashAttention,
      view: () => membership.view(),
      announceSoon: () => { membership.announceSoon() },
      dialNext,
      memoryBudgetBytes: config.memoryBudgetBytes,
      serving: { ...(config.maxSequences !== undefined ? { maxSessionsPerStage: config.maxSequences } : {}), ...(config.prefixCacheBytes !== undefined ? { prefixCacheBytes: config.prefixCacheBytes } : {}) },
      ...(prepareRange !== undefined ? { prepareRange } : {}),
      ...(init.msPerLayer !== undefined ? { msPerLayer: init.msPerLayer } : {}),
      ...(init.gpu !== undefined ? { gpu: init.gpu } : {}),
      ...(init.onDeviceSpeed !== undefined ? { onDeviceSpeed: init.onDeviceSpeed } : {})
    })
  }
  const limits = { maxInboundStreams: MAX_STREAMS, maxOutboundStreams: MAX_STREAMS }
  let peerFetch: PeerModelFetch | undefined
  /** requests run through this node's stages: weight traffic yields to them (busyPacer) */
  const busy = (): boolean => (agreement?.stages.activeSessions ?? 0) > 0
  const stopping = new AbortController()
  /** the served model is whole on disk (from the start, pulled meanwhile, or a promoted peer fetch) */
  let held = entry !== undefined
  const startAgreement = async (a: PlanAgreement): Promise<void> => {
    agreement = a
    await libp2p.handle(ACTIVATIONS_PROTOCOL, createActivationsHandler(a, { onRefusal: a.metrics.onRefusal }), limits)
    a.start()
    membership.announceSoon()
  }
  /**
   * The whole file of the served model is now at `path` (pulled while the node ran, or its peer fetch
   * completed): serve from it — start planning if the header was not fetched yet, else switch the
   * agreement's path and stop fetching (stages already loaded keep their weights).
   */
  const adoptWhole = async (path: string): Promise<void> => {
    if (held || stopping.signal.aborted) return
    held = true
    const fetch = peerFetch
    if (fetch !== undefined && fetch.promoted === undefined) {
      await fetch.stop()
      await removePartialCopy(join(config.dataDir, 'models', '.partial'), fetch.path)
    }
    log.info({ model: wanted, path }, 'the served model is whole on disk now: serving it from the file')
    if (agreement === undefined) await startAgreement(makeAgreement(modelIdOfPath(path), path))
    else agreement.model.path = path
    membership.announceSoon()
  }
  if (entry !== undefined) {
    agreement = makeAgreement(entry.id, entry.path)
  } else if (wanted !== undefined) {
    // the model is not on disk: fetch the header and, once planned, this node's layers from peers that hold it
    const id = modelIdOfPath(wanted)
    log.info({ model: id }, 'the model to serve is not on disk: fetching it from peers that hold it (only the layers this node is planned to run)')
    const fetch = new PeerModelFetch({
      modelId: id,
      dir: join(config.dataDir, 'models', '.partial'),
      holders: () => [...membership.view().members.values()].map((m) => m.announcement).filter((a) => a.peerId !== selfId && holdsModel(a, id)).map((a) => a.peerId),
      ...weightsDialer(libp2p),
      log,
      pace: busyPacer(busy),
      completeCopy: config.fetchWhole,
      onPromoted: (path) => { void adoptWhole(path) },
      ...(config.fetchMaxBytesPerSec !== undefined ? { maxBytesPerSec: config.fetchMaxBytesPerSec } : {})
    })
    peerFetch = fetch
    void fetch.prepareHeader(stopping.signal).then(async (path) => {
      if (stopping.signal.aborted || held || agreement !== undefined) return
      await startAgreement(makeAgreement(id, path, async (range, signal) => { if (!held) await fetch.ensureRange(range, signal) }))
      log.info({ model: id, layers: agreement!.model.metadata.nLayers }, 'pipeline started from a partial copy: planning this model with the mesh')
    }).catch((err: Error) => {
      if (!stopping.signal.aborted && !held) log.error({ err: err.message, model: id }, 'peer fetch of the model header failed: this node only routes')
    })
  } else {
    log.warn({ model: DEFAULT_MODEL_ID }, 'the model to serve is not on disk: this node takes no part in shard plans (it still routes requests)')
  }
  const metrics = agreement?.metrics ?? new PipelineMetrics()
  const limit = (): number => config.maxSequences ?? agreement?.stages.maxSequences() ?? DEFAULT_SEQUENCES
  const admission = new AdmissionGate({ limit, maxQueue: () => config.maxQueue ?? limit(), capacityBytes: () => agreement?.stages.kvCapacityBytes() ?? Number.POSITIVE_INFINITY })
  const inference = new MeshInferenceService({
    admission,
    selfId,
    get agreement () { return agreement },
    metrics,
    local: init.local,
    openInferenceStream: async (peerId, signal) => await libp2p.dialProtocol(peerIdFromString(peerId), INFERENCE_PROTOCOL, { signal }),
    dialNext,
    view: () => membership.view()
  })
  // a model pulled from the Hub: its file's sha256 as the Hub published it (`models/.meta`) → manifest provenance HUB
  const store = new ModelStore(join(config.dataDir, 'models'))
  const hubSha256 = async (id: string, fileName: string): Promise<string | undefined> => (await store.readMeta(id))?.files.find((f) => f.name === fileName)?.sha256
  const weights = await handleWeights(libp2p, new LocalWeightsSource({ list: async () => await init.local.registry.list(), hubSha256, tamper: config.testTamperWeights }), { host: config.host, pace: busyPacer(busy), log })
  if (agreement !== undefined) await libp2p.handle(ACTIVATIONS_PROTOCOL, createActivationsHandler(agreement, { onRefusal: agreement.metrics.onRefusal }), limits)
  await libp2p.handle(INFERENCE_PROTOCOL, createInferenceHandler({ generate: (req, o) => inference.generateAsFirstStage(req, o) }), limits)
  agreement?.start()
  if (agreement !== undefined) log.info({ model: agreement.modelId, layers: agreement.model.metadata.nLayers, budgetMiB: Math.floor(config.memoryBudgetBytes / 2 ** 20) }, 'pipeline started: planning this model with the mesh')
  return {
    get agreement () { return agreement },
    inference,
    get metrics () { return agreement?.metrics ?? metrics },
    fetchProgress: () => held ? undefined : peerFetch?.progress(agreement?.model.metadata.nLayers),
    modelsChanged: async () => {
      if (held || wanted === undefined) return
      const hit = (await init.local.registry.list()).find((e) => e.path === resolve(wanted) || e.id === wanted || e.id === modelIdOfPath(wanted))
      if (hit !== undefined) await adoptWhole(hit.path)
    },
    weightsServed: weights.stats,
    admission,
    prefixStats: () => agreement?.stages.prefixStats(),
    gauges: () => {
      const plan = agreement?.serving().plan
      return { activeSessions: agreement?.stages.activeSessions ?? 0, loadedShards: agreement?.stages.loadedShards ?? 0, planId: plan?.id, planReady: plan !== undefined }
    },
    stop: async () => {
      stopping.abort()
      await peerFetch?.stop()
      await libp2p.unhandle([ACTIVATIONS_PROTOCOL, INFERENCE_PROTOCOL]).catch(() => {})
      await weights.stop()
      await agreement?.stop()
      await inference.dispose()
    }
  }
}

/** Deletes a partial copy superseded by the whole file: every `<part>.gguf` and its state file of that model. */
async function removePartialCopy (dir: string, part1: string | undefined): Promise<void> {
  if (part1 === undefined) return
  const id = ggufModelName(basename(part1))
  const names = await readdir(dir).catch(() => [] as string[])
  const ofModel = (n: string): boolean => { const file = n.replace(/\.fetch\.json$/, ''); return file.endsWith('.gguf') && ggufModelName(file) === id }
  await Promise.all(names.filter(ofModel).map(async (n) => { await rm(join(dir, n), { force: true }) }))
}
