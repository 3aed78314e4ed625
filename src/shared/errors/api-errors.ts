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

/** No route for this method and path. HTTP 404. */
export class RouteNotFoundError extends ExoError {
  readonly code = 'ROUTE_NOT_FOUND'
}
