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
