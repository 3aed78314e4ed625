import { loadShard, readModelMetadata } from '../engine/index.js'
import type { ShardEngine } from './shard-engine.js'

/** The ggml engine of src/engine behind the node's ShardEngine port. */
export const ggmlShardEngine: ShardEngine = {
  readMetadata: (modelPath) => readModelMetadata(modelPath),
  loadShard: async (options, control) => await loadShard(options, control)
}
