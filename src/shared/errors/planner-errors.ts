import { ExoError } from './exo-error.js'

/** The planner was given an invalid view or model card (a caller bug: NaN speed, duplicate peer ids…). */
export class PlannerInputError extends ExoError {
  readonly code = 'PLANNER_INPUT'
}
