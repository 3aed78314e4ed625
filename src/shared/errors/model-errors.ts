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
