/**
 * How many of a node's layers go to its GPU (`--gpu-layers N|auto`), pure: the node's LAST layers, as llama.cpp
 * offloads the last n_gpu_layers. `auto` fits them into the device budget next to their KV cache and compute
 * buffers (the planner's model-card bounds), the output first on the last stage, as llama.cpp does.
 */
import { kvBytesPerLayer, layerComputeBytes, stageComputeBytes } from './pipeline/model-card.js'
import type { ComputeBackendInfo, LayerRange, ModelMetadata, ShardOptions } from '../engine/types.js'
import type { DeviceInfo } from '../shared/device-info.js'

/** undefined = no GPU device (CPU-only shards) */
export type GpuOffload = { layers: number | 'auto', budgetBytes: number } | undefined

/**
 * Layers of `ranges` (ascending, the node's shards) to offload, counted from the node's last layer. `auto`: the
 * stage compute buffer, the output (when the node runs the last layer) and then, from the last layer down,
 * each layer's weights + KV cache (`contextSize` cells) + per-layer compute buffer while they fit the budget.
 */
export function nodeGpuLayers (offload: GpuOffload, meta: ModelMetadata, ranges: readonly LayerRange[], contextSize: number, flashAttention: boolean): number {
  if (offload === undefined) return 0
  const owned = ranges.reduce((n, r) => n + r.end - r.start, 0)
  if (offload.layers !== 'auto') return Math.min(offload.layers, owned)
  const runsLast = ranges.some((r) => r.end === meta.nLayers)
  let left = offload.budgetBytes - stageComputeBytes(meta, contextSize, flashAttention) - (runsLast ? meta.outputBytes : 0)
  if (left < 0) return 0
  const kv = kvBytesPerLayer(meta, contextSize)
  const layers = ranges.flatMap((r) => Array.from({ length: r.end - r.start }, (_, i) => r.start + i)).sort((a, b) => b - a)
  let n = 0
  for (const il of layers) {
    left -= (meta.layerBytes[il] ?? 0) + (kv[il] ?? 0) + layerComputeBytes(meta, contextSize)
    if (left < 0) break
    n++
  }
  return n
}

/** The engine options of one of the node's shards when the node offloads its last `nodeLayers` layers. */
export function shardGpuOptions (offload: GpuOffload, range: LayerRange, ranges: readonly LayerRange[], nodeLayers: number): Pick<ShardOptions, 'gpuLayers'> {
  if (offload === undefined) return {}
  const layers = ranges.flatMap((r) => Array.from({ length: r.end - r.start }, (_, i) => r.start + i)).sort((a, b) => b - a).slice(0, nodeLayers)
  return { gpuLayers: layers.filter((il) => il >= range.start && il < range.end).length }
}

/** Device memory kept free for the driver and other processes: 10 % of the device, at least 128 MiB, at most 1 GiB. */
export function deviceReserveBytes (totalBytes: number): number {
  return Math.min(2 ** 30, Math.max(128 * 2 ** 20, Math.floor(totalBytes / 10)))
}

/** The node's offload setting for the selected backend: undefined without a GPU device. */
export function gpuOffloadFor (backend: ComputeBackendInfo | undefined, layers: number | 'auto'): GpuOffload {
  const d = backend?.device
  if (d === undefined) return undefined
  return { layers, budgetBytes: Math.max(0, d.freeBytes - deviceReserveBytes(d.totalBytes)) }
}
export type { ComputeBackendInfo }

/**
 * The devices this node announces (protocols/membership.md `devices`): every device of the selected backend; the
 * one offloaded layers use offers the offload budget and carries the device probe's ms per layer (0 until measured).
 */
export function announcedDevices (backend: ComputeBackendInfo | undefined, offload: GpuOffload, deviceMsPerLayer: number, gpuLayers: number | 'auto'): DeviceInfo[] {
  if (backend === undefined || backend.backend === 'cpu') return []
  return backend.devices.map((d) => {
    const used = d.index === backend.device?.index && offload !== undefined
    return {
      backend: backend.backend,
      name: d.description.slice(0, 128),
      totalBytes: d.totalBytes,
      freeBytes: d.freeBytes,
      budgetBytes: used ? offload.budgetBytes : 0,
      computeMsPerLayer: used ? Math.min(1000, deviceMsPerLayer) : 0,
      ...(used && gpuLayers !== 'auto' ? { maxLayers: Math.min(4096, gpuLayers) } : {})
    }
  })
}
