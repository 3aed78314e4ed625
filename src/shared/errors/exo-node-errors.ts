import { ExoError } from './exo-error.js'

/** Inference was requested but this build of the node has no engine wired in yet. */
export class NoEngineError extends ExoError {
  readonly code = 'NO_ENGINE'
  constructor () { super('no inference engine is wired into this node yet') }
}

/** The HTTP server could not listen on the configured host/port. */
export class HttpListenError extends ExoError {
  readonly code = 'HTTP_LISTEN'
}
