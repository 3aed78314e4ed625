import type { Command } from 'commander'
import { formatPeersTable } from '../peers-table.js'
import { API_KEY_OPTION, DEFAULT_API, NoNodeError, fetchClusterState } from '../fetch-cluster-state.js'

const WATCH_INTERVAL_MS = 2000

/** `exo-p2p peers`: the mesh as the local node sees it. */
export default function register (program: Command): void {
  program.command('peers')
    .description('list the members of the mesh as the local node sees them')
    .option('--api <url>', 'HTTP API of the node to ask', DEFAULT_API)
    .option(...API_KEY_OPTION)
    .option('--json', 'print the members as a JSON array', false)
    .option('--watch', `refresh every ${WATCH_INTERVAL_MS / 1000} s until Ctrl-C`, false)
    .action(async (opts: { api: string, apiKey?: string, json: boolean, watch: boolean }) => {
      // `exo-p2p peers --watch | head` closes stdout: end quietly
      process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(0); else throw err })
      const show = async (): Promise<void> => {
        const state = await fetchClusterState(opts.api, opts.apiKey ?? process.env.EXO_P2P_API_KEY)
        const text = opts.json ? JSON.stringify(state.members, null, 2) : formatPeersTable(state)
        if (opts.watch && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H')
        console.log(text)
      }
      try {
        await show()
        while (opts.watch) {
          await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS))
          await show()
        }
      } catch (err) {
        if (!(err instanceof NoNodeError)) throw err
        console.error(err.message)
        process.exitCode = 1
      }
    })
}
