import type { ComputeBackendInfo, LoadedShard, ModelMetadata, ShardOptions } from '../engine/types.js'

/** The part of src/engine the node uses to run models locally (the ggml engine implements it). */
export interface ShardEngine {
  /** Header facts of a GGUF (no weights read). Throws the engine's typed errors for unusable files. */
  readMetadata (modelPath: string): ModelMetadata
  loadShard (options: ShardOptions, control: { signal?: AbortSignal }): Promise<LoadedShard>
  /**
   * Chooses the compute backend and GPU device of this process (`--gpu`, `--gpu-device`) before any shard loads;
   * throws GpuBackendUnavailableError for a requested backend that is missing. Absent on engines without GPUs.
   */
  selectBackend?: (gpu: 'auto' | 'cuda' | 'vulkan' | 'metal' | 'cpu', deviceIndex: number) => ComputeBackendInfo
}
