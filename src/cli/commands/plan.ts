import type { Command } from 'commander'
import type { ClusterStateJson } from '../../shared/cluster-state.js'
import { formatPlan, planCliJson } from '../plan-view.js'

const DEFAULT_API = 'http://127.0.0.1:52415'

class NoNodeError extends Error {}

async function fetchState (api: string): Promise<ClusterStateJson> {
  const url = new URL('/cluster/state', api)
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) })
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name
    throw new NoNodeError(`No exo-p2p node answers at ${api} (${cause}). Start one with \`exo-p2p start\`, or point --api at a running node.`)
  }
  if (!res.ok) throw new NoNodeError(`${url.href} answered HTTP ${res.status}; is this an exo-p2p node?`)
  return await res.json() as ClusterStateJson
}

/** `exo-p2p plan`: the shard plan the asked node serves (stages, nodes, layer ranges, predicted ms/token, id, ready). */
export default function register (program: Command): void {
  program.command('plan')
    .description('show the agreed shard plan: stages, nodes, layer ranges, predicted ms/token, plan id, ready or not')
    .option('--api <url>', 'HTTP API of the node to ask', DEFAULT_API)
    .option('--json', 'print JSON: { id, model, ready, predictedMsPerToken, stages: [...], reason }', false)
    .action(async (opts: { api: string, json: boolean }) => {
      try {
        const state = await fetchState(opts.api)
        console.log(opts.json ? JSON.stringify(planCliJson(state), null, 2) : formatPlan(state))
      } catch (err) {
        if (!(err instanceof NoNodeError)) throw err
        console.error(err.message)
        process.exitCode = 1
      }
    })
}
