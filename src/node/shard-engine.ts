import type { LoadedShard, ModelMetadata, ShardOptions } from '../engine/types.js'

/** The part of src/engine the node uses to run models locally (the ggml engine implements it). */
export interface ShardEngine {
  /** Header facts of a GGUF (no weights read). Throws the engine's typed errors for unusable files. */
  readMetadata (modelPath: string): ModelMetadata
  loadShard (options: ShardOptions, control: { signal?: AbortSignal }): Promise<LoadedShard>
}
