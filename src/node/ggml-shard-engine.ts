import { loadShard, readModelMetadata, selectComputeBackend } from '../engine/index.js'
import type { ShardEngine } from './shard-engine.js'

/** The ggml engine of src/engine behind the node's ShardEngine port. */
export const ggmlShardEngine: ShardEngine = {
  readMetadata: (modelPath) => readModelMetadata(modelPath),
  loadShard: async (options, control) => await loadShard(options, control),
  selectBackend: (gpu, deviceIndex) => {
    const strip = ({ index, name, description, totalBytes, freeBytes }: { index: number, name: string, description: string, totalBytes: number, freeBytes: number }): { index: number, name: string, description: string, totalBytes: number, freeBytes: number } => ({ index, name, description, totalBytes, freeBytes })
    const be = selectComputeBackend(gpu, deviceIndex)
    return { backend: be.backend, device: be.device === undefined ? undefined : strip(be.device), devices: be.devices.map(strip) }
  }
}
