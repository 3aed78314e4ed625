/** Pure shard planner (DESIGN.md "Planner"): cluster view + model card → plan. No clock, randomness or I/O. */
export { plan, formatBytes, HYSTERESIS } from './plan.js'
export { diffPlans } from './diff-plans.js'
export { canonicalise } from './canonical-view.js'
export type { ModelCard, NoPlan, Plan, PlanAction, PlannerDevice, PlannerMember, PlannerView, PlanStage } from './types.js'
