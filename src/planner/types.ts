import type { ModelId, NodeId, PlanId } from '../shared/ids.js'

/** One cluster member as the planner sees it. */
export interface PlannerMember {
  peerId: NodeId
  name: string
  /** Bytes this node may use for weights + KV cache of the planned model. */
  memoryBudgetBytes: number
  /**
   * Measured decode time of one average layer of THIS model on this node, in ms per token
   * (0 < x ≤ 1000). A layer of `b` bytes costs `computeMsPerLayer × b / meanLayerBytes`; the output
   * projection on the last stage is costed the same way from `outputBytes`.
   */
  computeMsPerLayer: number
  /**
   * Present when the node lacks the model file and would fetch its layers from peers that hold it:
   * the measured bandwidth from the best holder, bytes/s (0 = not measured). Only shown in the plan
   * (`PlanStage.loadMs`); it does not change the choice of plan.
   */
  fetchBytesPerSec?: number
  /**
   * The node's compute device (GPU) it offloads layers to; absent = CPU only. Device memory is counted
   * apart from `memoryBudgetBytes` (see `PlannerDevice`).
   */
  device?: PlannerDevice
}

/**
 * A device a node offloads layers to, as the planner sees it. Of a stage [start, end) the node offloads
 * its LAST k layers (as llama.cpp offloads the last n_gpu_layers), k as large as fits: each offloaded
 * layer puts its weights, its KV cache and its per-layer compute temporaries (`layerOverheadBytes`) in
 * device memory, plus one compute buffer (`stageOverheadBytes`) per stage that offloads anything, all
 * within `budgetBytes`, and at most `maxLayers` layers; a last stage puts the output there first (as
 * llama.cpp does), and offloads layers only if the output fits too. The other layers, the embeddings (first
 * stage), the output when no layer is offloaded and the host's compute buffer stay in host memory
 * (`memoryBudgetBytes`) and run at the host's `computeMsPerLayer`; the device's run at its own. A device slower than the host
 * is still used: the node offloads what fits (`--gpu-layers auto`), and the planner gives it fewer layers.
 */
export interface PlannerDevice {
  /** device memory offered to plans, bytes (the announcement's `devices[].budgetBytes`) */
  budgetBytes: number
  /** measured decode time of one average layer of THIS model on the device, ms per token (0 < x ≤ 1000) */
  computeMsPerLayer: number
  /** the most layers to offload (`--gpu-layers N`); absent = no limit but memory */
  maxLayers?: number
}

/** What one node knows about the cluster when it plans. */
export interface PlannerView {
  members: readonly PlannerMember[]
  /**
   * Measured round-trip times in ms: `rttMs[a][b]` from member a to member b. Either direction is
   * enough (the canonical RTT of a link is the mean of the directions measured). A pair with no
   * measurement in either direction cannot be adjacent in a plan.
   */
  rttMs: Readonly<Record<string, Readonly<Record<string, number>>>>
}

/** What the planner needs to know about a model (from the GGUF, see engine ModelMetadata). */
export interface ModelCard {
  id: ModelId
  nLayers: number
  /** bytes of each layer's weights, length nLayers */
  layerBytes: readonly number[]
  /** token embedding table: held by the first stage */
  embeddingBytes: number
  /** output norm + projection: held by the last stage */
  outputBytes: number
  /** KV cache bytes per token per layer */
  kvBytesPerTokenPerLayer: number
  /**
   * KV cache bytes of each layer at `contextSize` (length nLayers). When present it replaces
   * kvBytesPerTokenPerLayer × contextSize per layer: sliding-window layers hold only their window's cells.
   */
  kvBytesPerLayer?: readonly number[]
  /** context (KV cells) every stage reserves */
  contextSize: number
  /** fixed bytes per stage (compute buffers); default 0 */
  stageOverheadBytes?: number
  /** bytes per layer a stage holds besides weights and KV (compute temporaries of each layer); default 0 */
  layerOverheadBytes?: number
}

/** One stage: a node and its half-open layer range [start, end). */
export interface PlanStage {
  peerId: NodeId
  name: string
  start: number
  end: number
  /** predicted compute ms per token of this stage (its host layers at the host's speed, offloaded ones at the device's) */
  computeMs: number
  /** host memory this stage needs (weights + embeddings/output + KV + overhead of the layers not offloaded) */
  memoryBytes: number
  /** device memory of the offloaded layers (weights + KV + overhead) and the device compute buffer; present when gpuLayers > 0 */
  deviceBytes?: number
  /** the node fetches its layers from peers: weight bytes to fetch (present only then) */
  fetchBytes?: number
  /** predicted fetch time from the measured bandwidth, ms (absent when not measured) */
  loadMs?: number
  /**
   * How many of the stage's layers run on the node's device (its LAST `gpuLayers` layers, as llama.cpp
   * offloads the last n_gpu_layers); the engine loads them with `gpuLayers`. Absent = 0 (all on the CPU).
   * The planner offloads as many as fit the node's device (`PlannerDevice`).
   */
  gpuLayers?: number
}

export interface Plan {
  kind: 'plan'
  /** sha256 (hex) of the canonical input and the stage assignment */
  id: PlanId
  modelId: ModelId
  nLayers: number
  /** in pipeline order; stage 0 holds the embeddings, the last one the output */
  stages: PlanStage[]
  /** Σ stage compute + Σ hop RTTs around the ring (last → first included) */
  predictedMsPerToken: number
  /** Σ hop RTTs around the ring, ms (0 for one stage) */
  ringRttMs: number
}

export interface NoPlan {
  kind: 'none'
  modelId: ModelId
  /** human-readable, with the numbers */
  reason: string
  neededBytes: number
  offeredBytes: number
}

/** What one node must do to move from one plan to the next; execute in array order (load before unload). */
export type PlanAction =
  | { kind: 'load', modelId: ModelId, start: number, end: number, isFirst: boolean, isLast: boolean }
  | { kind: 'unload', modelId: ModelId, start: number, end: number }
