import type { ClusterStateJson } from '../shared/cluster-state.js'
import type { InferenceService } from '../shared/inference.js'
import type { ModelPuller } from '../shared/pull-events.js'

/** What the HTTP app needs from the node. */
export interface HttpAppDeps {
  /** generation: the local engine or the pipeline */
  inference: InferenceService
  /** snapshot of the mesh for GET /cluster/state */
  clusterState: () => ClusterStateJson
  /** Prometheus text (exposition format 0.0.4) for GET /metrics */
  metrics: () => string | Promise<string>
  /** when set, every route but the dashboard's static files requires it (bearer or x-api-key) */
  apiKey?: string
  /** with apiKey: GET /metrics stays open (`--metrics-public`) */
  metricsPublic?: boolean
  version: string
  /** the model store behind Ollama `POST /api/pull` and `DELETE /api/delete`; absent = those routes answer 400 */
  models?: ModelPuller
}
