import '../shared/polyfills.js'
import { Command } from 'commander'
import { readFileSync, readdirSync } from 'node:fs'

/**
 * Registers commands only. Each command is `commands/<name>.ts` whose default export is
 * `(program: Command) => void`; they are discovered here so adding one touches no shared file.
 */
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

const program = new Command()
  .name('exo-p2p')
  .description('Pool machines into one LLM inference cluster over an encrypted libp2p mesh')
  .version(pkg.version)
  .showHelpAfterError()

const commandsDir = new URL('./commands/', import.meta.url)
for (const file of readdirSync(commandsDir).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort()) {
  const mod = await import(new URL(file, commandsDir).href) as { default: (p: Command) => void }
  mod.default(program)
}

await program.parseAsync(process.argv)
