import type { Command } from 'commander'
import { writeNewClusterKeyFile } from '../../config/cluster-key-file.js'
import { ExoError } from '../../shared/errors/exo-error.js'

/** `exo-p2p keygen FILE`: writes a new random cluster key (never overwrites). */
export default function register (program: Command): void {
  program.command('keygen')
    .description('write a new cluster key to FILE; start every node of the cluster with --cluster-key FILE')
    .argument('<file>', 'where to write the key (must not exist)')
    .action((file: string) => {
      try {
        writeNewClusterKeyFile(file)
      } catch (err) {
        if (!(err instanceof ExoError)) throw err
        console.error(`exo-p2p keygen: ${err.message}`)
        process.exitCode = 1
        return
      }
      console.log(`Wrote a new cluster key to ${file} (mode 0600).`)
      console.log('Copy it to every machine of the cluster and start each node with:')
      console.log(`  exo-p2p start --cluster-key ${file}`)
      console.log('Nodes without this key cannot connect to the cluster. Keep it secret.')
    })
}
