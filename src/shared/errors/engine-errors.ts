import { ExoError } from './exo-error.js'

/** The file is not a GGUF file (bad magic or unsupported version). */
export class NotGgufError extends ExoError {
  readonly code = 'ENGINE_NOT_GGUF'
}

/** The GGUF file ends before its header, tensor infos or tensor data end. */
export class TruncatedGgufError extends ExoError {
  readonly code = 'ENGINE_TRUNCATED_GGUF'
}

/** The GGUF header is structurally invalid (bad lengths, types, missing or inconsistent keys/tensors). */
export class InvalidGgufError extends ExoError {
  readonly code = 'ENGINE_INVALID_GGUF'
}

/** `general.architecture` names an architecture the engine has no graph builder for. */
export class UnknownArchitectureError extends ExoError {
  readonly code = 'ENGINE_UNKNOWN_ARCH'
  constructor (readonly architecture: string, supported: readonly string[]) {
    super(`unknown architecture '${architecture}' (supported: ${supported.join(', ')})`)
  }
}

/** A tensor has a ggml type the engine does not accept. */
export class UnsupportedTensorTypeError extends ExoError {
  readonly code = 'ENGINE_UNSUPPORTED_TENSOR_TYPE'
  constructor (readonly tensorName: string, readonly typeId: number, typeName: string, supported: readonly string[]) {
    super(`tensor '${tensorName}' has type ${typeName} (${typeId}); supported: ${supported.join(', ')}`)
  }
}

/** A model feature the engine does not implement (e.g. YaRN rope scaling, MoE). */
export class UnsupportedModelError extends ExoError {
  readonly code = 'ENGINE_UNSUPPORTED_MODEL'
}

/** The requested layer range is not a non-empty sub-range of [0, nLayers). */
export class InvalidLayerRangeError extends ExoError {
  readonly code = 'ENGINE_INVALID_LAYER_RANGE'
  constructor (start: number, end: number, nLayers: number) {
    super(`layer range [${start}, ${end}) is not a non-empty integer sub-range of [0, ${nLayers})`)
  }
}

/** Invalid engine option (threads, context size, ...). */
export class InvalidEngineOptionError extends ExoError {
  readonly code = 'ENGINE_INVALID_OPTION'
}

/** A forward input that does not fit this shard: wrong kind, wrong length, token id out of range. */
export class InvalidForwardInputError extends ExoError {
  readonly code = 'ENGINE_INVALID_INPUT'
}

/** truncate() to a position whose sliding window was already overwritten in the bounded sliding-window cache. */
export class SlidingWindowHistoryError extends ExoError {
  readonly code = 'ENGINE_SWA_HISTORY_LOST'
  constructor (readonly position: number, readonly oldestKept: number) {
    super(`cannot truncate to position ${position}: the sliding-window cache keeps positions from ${oldestKept} on, older ones were overwritten (re-prefill from 0)`)
  }
}

/** The forward pass would need more KV cells than the session has. */
export class ContextOverflowError extends ExoError {
  readonly code = 'ENGINE_CONTEXT_OVERFLOW'
  constructor (readonly position: number, readonly nTokens: number, readonly contextSize: number) {
    super(`position ${position} + ${nTokens} tokens exceeds the context size of ${contextSize}`)
  }
}

/** The ggml shared libraries could not be found, loaded, or do not match the pinned layout. */
export class NativeLibraryError extends ExoError {
  readonly code = 'ENGINE_NATIVE_LIBRARY'
}

/** A native ggml call failed (allocation failure, compute status != success). */
export class NativeCallError extends ExoError {
  readonly code = 'ENGINE_NATIVE_CALL'
}

/** The mixture-of-experts hyper-parameters are missing or inconsistent (e.g. expert_used_count > expert_count). */
export class InvalidExpertConfigError extends ExoError {
  readonly code = 'ENGINE_INVALID_EXPERT_CONFIG'
}

/** A split GGUF model was given by a part other than its first (`split.no` is not 0): pass `…-00001-of-NNNNN.gguf`. */
export class NotFirstSplitPartError extends ExoError {
  readonly code = 'ENGINE_NOT_FIRST_SPLIT_PART'
  constructor (readonly partPath: string, readonly splitNo: number, readonly splitCount: number) {
    super(`${partPath} is part ${splitNo + 1} of ${splitCount} of a split model (split.no ${splitNo}); load the model by its first part`)
  }
}

/** The first part of a split model is not named `<prefix>-00001-of-<split.count>.gguf`, so its other parts cannot be found. */
export class InvalidSplitNameError extends ExoError {
  readonly code = 'ENGINE_INVALID_SPLIT_NAME'
  constructor (readonly partPath: string, readonly splitCount: number) {
    super(`${partPath} is the first of ${splitCount} split parts but is not named <prefix>-00001-of-${String(splitCount).padStart(5, '0')}.gguf`)
  }
}

/** A part of a split model does not exist or cannot be opened. */
export class SplitPartMissingError extends ExoError {
  readonly code = 'ENGINE_SPLIT_PART_MISSING'
  constructor (readonly partPath: string, readonly splitNo: number, readonly splitCount: number, options?: { cause?: unknown }) {
    super(`part ${splitNo + 1} of ${splitCount} of the split model is missing: ${partPath}`, options)
  }
}

/** A part of a split model ends before its header or one of its tensors' data ends. */
export class SplitPartTruncatedError extends ExoError {
  readonly code = 'ENGINE_SPLIT_PART_TRUNCATED'
  constructor (readonly partPath: string, detail: string, options?: { cause?: unknown }) {
    super(`split part ${partPath} is truncated: ${detail}`, options)
  }
}

/** A part of a split model disagrees with the first part (split.no, split.count, split.tensors.count, duplicate tensors) or is not a GGUF. */
export class SplitPartMismatchError extends ExoError {
  readonly code = 'ENGINE_SPLIT_PART_MISMATCH'
  constructor (readonly partPath: string, detail: string, options?: { cause?: unknown }) {
    super(`split part ${partPath} does not belong to the model: ${detail}`, options)
  }
}

/** `--gpu BACKEND` was requested but that backend's prebuilt package is not installed or found no device. */
export class GpuBackendUnavailableError extends ExoError {
  readonly code = 'ENGINE_GPU_UNAVAILABLE'
  constructor (readonly backend: string, readonly packageName: string, reason: string, readonly devicesFound: readonly string[]) {
    super(`--gpu ${backend}: ${reason} (package ${packageName}${reason.includes('not installed') ? `; install it with \`npm install ${packageName}\`` : ''}). ` +
      `GPU devices found: ${devicesFound.length === 0 ? 'none' : devicesFound.join(', ')}` +
      (backend === 'vulkan' ? ' (a CPU Vulkan driver such as Mesa lavapipe is used only with GGML_VK_VISIBLE_DEVICES=0)' : ''))
  }
}

/** Moving pages of a shard's shared KV store failed half-way: the sequences in it no longer hold their KV (the shard must be reloaded). */
export class KvStoreBrokenError extends ExoError {
  readonly code = 'ENGINE_KV_STORE_BROKEN'
}
