/**
 * Which of a shard's layers run on the GPU device (llama.cpp's n_gpu_layers, per shard): its LAST `gpuLayers`
 * layers, plus the output (output_norm + output) on the last shard when `gpuOutput` (default: whenever the
 * shard offloads a layer — llama.cpp offloads the output first). The token embedding stays on the CPU.
 */
import { InvalidEngineOptionError } from '../shared/errors/engine-errors.js'
import { computeBackend } from './native/devices.js'
import type { NativeDevice } from './native/devices.js'
import type { LayerRange, ShardOptions } from './types.js'

export interface ShardPlacement {
  /** the device offloaded layers use; undefined = a CPU-only shard (no scheduler, plain CPU buffer types) */
  device: NativeDevice | undefined
  /** layers [firstGpuLayer, range.end) are on the device */
  firstGpuLayer: number
  /** the output (layer index nLayers) is on the device */
  gpuOutput: boolean
  /** every layer this shard runs (and its output, on the last shard) is on the device: llama.cpp's full offload */
  fullOffload: boolean
}

/** `il` = a layer index, nLayers = the output, -1 = the input (token embedding) */
export function onDevice (p: ShardPlacement, il: number, nLayers: number): boolean {
  if (p.device === undefined || il < 0) return false
  return il >= nLayers ? p.gpuOutput : il >= p.firstGpuLayer
}

export function resolvePlacement (options: ShardOptions, range: LayerRange, nLayers: number): ShardPlacement {
  const nOwned = range.end - range.start
  const isLast = range.end === nLayers
  if (options.gpuLayers === undefined) {
    if (options.gpuOutput !== undefined || options.gpuFullOffload !== undefined) throw new InvalidEngineOptionError('gpuOutput / gpuFullOffload need gpuLayers (a GPU device)')
    return { device: undefined, firstGpuLayer: range.end, gpuOutput: false, fullOffload: false }
  }
  const g = options.gpuLayers
  if (!Number.isInteger(g) || g < 0 || g > nOwned) throw new InvalidEngineOptionError(`gpuLayers must be an integer in [0, ${nOwned}] (the shard's layers), got ${String(g)}`)
  if (options.gpuOutput !== undefined && typeof options.gpuOutput !== 'boolean') throw new InvalidEngineOptionError(`gpuOutput must be a boolean, got ${String(options.gpuOutput)}`)
  const device = computeBackend().device
  if (device === undefined) throw new InvalidEngineOptionError('gpuLayers was given but no GPU device is selected (selectComputeBackend found none)')
  const gpuOutput = isLast && (options.gpuOutput ?? g > 0)
  if (options.gpuFullOffload !== undefined && typeof options.gpuFullOffload !== 'boolean') throw new InvalidEngineOptionError(`gpuFullOffload must be a boolean, got ${String(options.gpuFullOffload)}`)
  return { device, firstGpuLayer: range.end - g, gpuOutput, fullOffload: options.gpuFullOffload ?? (g === nOwned && (gpuOutput || !isLast)) }
}
