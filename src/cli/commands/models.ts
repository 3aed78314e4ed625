import type { Command } from 'commander'
import { loadNodeConfig } from '../../config/load-node-config.js'
import { listCatalogue } from '../../node/model-catalogue.js'
import { ExoError } from '../../shared/errors/exo-error.js'
import { API_KEY_OPTION, DEFAULT_API, NoNodeError, fetchClusterState } from '../fetch-cluster-state.js'
import { formatModelsTable, holdersById, modelsJson } from '../models-table.js'

/** `exo-p2p models`: the models on this machine (data dir + bundled), and which nodes of the mesh hold each. */
export default function register (program: Command): void {
  program.command('models')
    .description('list the models in <data dir>/models: id, architecture, quant, size, layers, and the nodes holding each (asked from a running node)')
    .option('--data-dir <dir>', 'data dir (default: ~/.exo-p2p)')
    .option('--api <url>', 'HTTP API of a running node to ask which nodes hold what', DEFAULT_API)
    .option(...API_KEY_OPTION)
    .option('--json', 'print a JSON array', false)
    .action(async (opts: { dataDir?: string, api: string, apiKey?: string, json: boolean }) => {
      try {
        const config = loadNodeConfig({ ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}) })
        const entries = await listCatalogue(config.dataDir)
        let holders: Map<string, string[]> | undefined
        try {
          holders = holdersById(await fetchClusterState(opts.api, opts.apiKey ?? process.env.EXO_P2P_API_KEY))
        } catch (err) {
          if (!(err instanceof NoNodeError)) throw err
          holders = undefined
        }
        console.log(opts.json ? JSON.stringify(modelsJson(entries, holders), null, 2) : formatModelsTable(entries, holders))
      } catch (err) {
        if (!(err instanceof ExoError)) throw err
        console.error(`exo-p2p models: ${err.message}`)
        process.exit(1)
      }
    })
}
