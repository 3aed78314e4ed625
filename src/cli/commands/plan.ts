import type { Command } from 'commander'
import { formatPlan, planCliJson } from '../plan-view.js'
import { API_KEY_OPTION, DEFAULT_API, NoNodeError, fetchClusterState } from '../fetch-cluster-state.js'

/** `exo-p2p plan`: the shard plan the asked node serves (stages, nodes, layer ranges, predicted ms/token, id, ready). */
export default function register (program: Command): void {
  program.command('plan')
    .description('show the agreed shard plan: stages, nodes, layer ranges, predicted ms/token, plan id, ready or not')
    .option('--api <url>', 'HTTP API of the node to ask', DEFAULT_API)
    .option(...API_KEY_OPTION)
    .option('--json', 'print JSON: { id, model, ready, predictedMsPerToken, stages: [...], reason }', false)
    .action(async (opts: { api: string, apiKey?: string, json: boolean }) => {
      try {
        const state = await fetchClusterState(opts.api, opts.apiKey ?? process.env.EXO_P2P_API_KEY)
        console.log(opts.json ? JSON.stringify(planCliJson(state), null, 2) : formatPlan(state))
      } catch (err) {
        if (!(err instanceof NoNodeError)) throw err
        console.error(err.message)
        process.exitCode = 1
      }
    })
}
