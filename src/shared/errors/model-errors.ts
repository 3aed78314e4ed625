import { ExoError } from './exo-error.js'

/** The requested model is not held by any node of the mesh. HTTP 404; the message lists the known ones. */
export class UnknownModelError extends ExoError {
  readonly code = 'UNKNOWN_MODEL'
  readonly known: string[]
  constructor (model: string, known: string[]) {
    super(`model '${model}' not found; the mesh can serve: ${known.length === 0 ? '(no models)' : known.join(', ')}`)
    this.known = known
  }
}

/** A partial copy of a model (peer fetch) cannot be written or completed. */
export class PartialCopyError extends ExoError {
  readonly code = 'MODEL_PARTIAL_COPY'
}

/** No peer that holds the model (with the file the fetch started from) is left to fetch from. */
export class NoHolderError extends ExoError {
  readonly code = 'MODEL_NO_HOLDER'
}
