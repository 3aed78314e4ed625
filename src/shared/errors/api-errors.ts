import { ExoError } from './exo-error.js'

/** A request body that is not valid for its route (wrong types, missing fields, bad values). HTTP 400. */
export class InvalidRequestError extends ExoError {
  readonly code = 'INVALID_REQUEST'
  /** dotted path of the offending field, when known (`messages.0.role`) */
  readonly param: string | undefined
  constructor (message: string, param?: string) {
    super(message)
    this.param = param
  }
}

/** Missing or wrong API key. HTTP 401. */
export class UnauthorizedError extends ExoError {
  readonly code = 'UNAUTHORIZED'
}

/** The requested model is not held by any node of the mesh. HTTP 404; the message lists the known ones. */
export class UnknownModelError extends ExoError {
  readonly code = 'UNKNOWN_MODEL'
  readonly known: string[]
  constructor (model: string, known: string[]) {
    super(`model '${model}' not found; the mesh can serve: ${known.length === 0 ? '(no models)' : known.join(', ')}`)
    this.known = known
  }
}

/** No route for this method and path. HTTP 404. */
export class RouteNotFoundError extends ExoError {
  readonly code = 'ROUTE_NOT_FOUND'
}
