import '../shared/polyfills.js'
import { Command } from 'commander'
import { readFileSync } from 'node:fs'

/** Registers commands only; each command lives in commands/<name>.ts. */
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

const program = new Command()
  .name('exo-p2p')
  .description('Pool machines into one LLM inference cluster over an encrypted libp2p mesh')
  .version(pkg.version)
  .showHelpAfterError()

// commands are registered here, one import per command

await program.parseAsync(process.argv)
