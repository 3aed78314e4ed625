import type { ClusterStateJson } from '../shared/cluster-state.js'

/** Where `peers` and `plan` look for a node by default. */
export const DEFAULT_API = 'http://127.0.0.1:52415'

/** No node answers at the given URL (or it is not an exo-p2p node). The CLI prints the message and exits 1. */
export class NoNodeError extends Error {
  override readonly name = 'NoNodeError'
}

/** The `--api-key` option of `peers` and `plan`; EXO_P2P_API_KEY when the flag is not given. */
export const API_KEY_OPTION = ['--api-key <key>', 'API key of the node (default: $EXO_P2P_API_KEY)'] as const

/**
 * GET /cluster/state of the node at `api` (5 s timeout), with the API key when one is given (flag, else
 * EXO_P2P_API_KEY), and a message a user can act on when none answers or the key is missing or wrong.
 */
export async function fetchClusterState (api: string, apiKey: string | undefined = process.env.EXO_P2P_API_KEY): Promise<ClusterStateJson> {
  const url = new URL('/cluster/state', api)
  const headers: Record<string, string> = apiKey !== undefined && apiKey !== '' ? { authorization: `Bearer ${apiKey}` } : {}
  let res: Response
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) })
  } catch (err) {
    const c = (err as { cause?: { code?: string, message?: string } }).cause
    const cause = c?.code ?? c?.message ?? (err as Error).name
    throw new NoNodeError(`No exo-p2p node answers at ${api} (${cause}). Start one with \`exo-p2p start\`, or point --api at a running node.`)
  }
  if (res.status === 401) {
    throw new NoNodeError(`${url.href} requires an API key${headers.authorization !== undefined ? ' (the one given was rejected)' : ''}: pass --api-key or set EXO_P2P_API_KEY.`)
  }
  if (!res.ok) throw new NoNodeError(`${url.href} answered HTTP ${res.status}; is this an exo-p2p node?`)
  return await res.json() as ClusterStateJson
}
