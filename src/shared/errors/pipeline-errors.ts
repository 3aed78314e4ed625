import { ExoError } from './exo-error.js'

/** No plan can serve the model: it fits nowhere, even split (the message is the planner's reason). HTTP 503. */
export class NoPlanError extends ExoError {
  readonly code = 'NO_PLAN'
}

/** A plan exists but not all of its stages have loaded and agreed yet. HTTP 503 (retry soon). */
export class PlanNotReadyError extends ExoError {
  readonly code = 'PLAN_NOT_READY'
}

/** An inference stream reached a node that is not the first stage of a ready plan (views differ for a moment). HTTP 503. */
export class NotFirstStageError extends ExoError {
  readonly code = 'NOT_FIRST_STAGE'
}

/**
 * The links under a request failed (a stream to a stage ended or timed out, a dial failed) and no
 * plan took it over within its wait: the mesh is partitioned or a stage is gone. HTTP 503 (retry later).
 */
export class PipelineUnavailableError extends ExoError {
  readonly code = 'PIPELINE_UNAVAILABLE'
}
