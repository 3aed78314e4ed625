import type { ClusterStateJson } from '../shared/cluster-state.js'

/** Where `peers` and `plan` look for a node by default. */
export const DEFAULT_API = 'http://127.0.0.1:52415'

/** No node answers at the given URL (or it is not an exo-p2p node). The CLI prints the message and exits 1. */
export class NoNodeError extends Error {
  override readonly name = 'NoNodeError'
}

/** GET /cluster/state of the node at `api` (5 s timeout), with a message a user can act on when none answers. */
export async function fetchClusterState (api: string): Promise<ClusterStateJson> {
  const url = new URL('/cluster/state', api)
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) })
  } catch (err) {
    const c = (err as { cause?: { code?: string, message?: string } }).cause
    const cause = c?.code ?? c?.message ?? (err as Error).name
    throw new NoNodeError(`No exo-p2p node answers at ${api} (${cause}). Start one with \`exo-p2p start\`, or point --api at a running node.`)
  }
  if (!res.ok) throw new NoNodeError(`${url.href} answered HTTP ${res.status}; is this an exo-p2p node?`)
  return await res.json() as ClusterStateJson
}
