import type { Command } from 'commander'
import { loadNodeConfig } from '../../config/load-node-config.js'
import { AbortedError, ExoError } from '../../shared/errors/exo-error.js'
import { formatBytes } from '../pull-progress.js'
import { runPull } from '../run-pull.js'

/** `exo-p2p pull MODEL`: a GGUF model from the Hugging Face Hub into the data dir's model store. */
export default function register (program: Command): void {
  program.command('pull')
    .description('download a GGUF model from the Hugging Face Hub (resumable, sha256-verified) into <data dir>/models')
    .argument('<model>', 'org/repo[:QUANT], hf.co/org/repo[:QUANT] or https://huggingface.co/ORG/REPO/resolve/REV/FILE.gguf')
    .option('--data-dir <dir>', 'data dir whose models/ receives the model (default: ~/.exo-p2p)')
    .addHelpText('after', '\nEnvironment: HF_TOKEN (gated / private repos), HF_ENDPOINT (a mirror), HF_HUB_CACHE (files found there are used in place).')
    .action(async (model: string, opts: { dataDir?: string }) => {
      try {
        const config = loadNodeConfig({ ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}) })
        const r = await runPull(model, config.dataDir)
        const note = r.receivedBytes > 0 ? `${formatBytes(r.receivedBytes)} downloaded` : 'nothing to download'
        console.log(`pulled ${r.id} (${note}): ${r.paths.join(', ')}`)
      } catch (err) {
        if (err instanceof AbortedError) { console.error('exo-p2p pull: interrupted; run the same pull again to resume'); process.exit(130) }
        if (!(err instanceof ExoError)) throw err
        console.error(`exo-p2p pull: ${err.message}`)
        process.exit(1)
      }
    })
}
