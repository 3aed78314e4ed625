import { ExoError } from './exo-error.js'

/** A structured-output / tool schema or a GBNF grammar that cannot be turned into a constraint. HTTP 400. */
export class InvalidGrammarError extends ExoError {
  readonly code = 'INVALID_GRAMMAR'
}

/** The sampler picked a token the grammar forbids (a bug in the generation loop, not the client). */
export class GrammarViolationError extends ExoError {
  readonly code = 'CONSTRAINT_VIOLATION'
}
