import type { Command } from 'commander'
import { join } from 'node:path'
import { loadNodeConfig } from '../../config/load-node-config.js'
import { ModelStore } from '../../models/model-store.js'
import { ExoError } from '../../shared/errors/exo-error.js'
import { formatBytes } from '../pull-progress.js'

/** `exo-p2p rm ID`: removes a model (all parts, its partial download, its provenance) from the store. */
export default function register (program: Command): void {
  program.command('rm')
    .description('remove a model from <data dir>/models (a file linked from the HF cache is unlinked, the cache kept)')
    .argument('<id>', 'model id as `exo-p2p models` lists it')
    .option('--data-dir <dir>', 'data dir (default: ~/.exo-p2p)')
    .action(async (id: string, opts: { dataDir?: string }) => {
      try {
        const config = loadNodeConfig({ ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}) })
        const removed = await new ModelStore(join(config.dataDir, 'models')).remove(id)
        console.log(`removed ${removed.id} (${removed.paths.length} file${removed.paths.length === 1 ? '' : 's'}, ${formatBytes(removed.sizeBytes)})`)
      } catch (err) {
        if (!(err instanceof ExoError)) throw err
        console.error(`exo-p2p rm: ${err.message}`)
        process.exit(1)
      }
    })
}
