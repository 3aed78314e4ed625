import { NoEngineError } from '../shared/errors/exo-node-errors.js'
import type { GenerationEvent, InferenceService, ModelInfo } from '../shared/inference.js'

/**
 * Placeholder until the local inference service is merged in: every call fails with NoEngineError
 * (HTTP maps it like any ExoError). The lead swaps in src/node/local-inference-service.ts at merge.
 */
export class NoEngineInferenceService implements InferenceService {
  async * generate (): AsyncIterable<GenerationEvent> {
    throw new NoEngineError()
  }

  async countTokens (): Promise<number> {
    throw new NoEngineError()
  }

  async listModels (): Promise<ModelInfo[]> {
    throw new NoEngineError()
  }
}
