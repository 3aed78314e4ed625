// TEST LAUNCHER (until the node wires the local engine into `exo-p2p start`): the same ExoNode as `start`,
// real mesh, real HTTP app, with the real LocalInferenceService (ggml engine) as its inference backend.
//   node --import tsx test/browser/helpers/engine-node.ts <start flags>
// Accepts the flags of `start` it is given by helpers/nodes.ts. It logs one line per finished generation
// with the engine's own finish reason ("generation finished … finishReason":"cancelled"), observed, not made up.
import '../../../src/shared/polyfills.js'
import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { loadNodeConfig } from '../../../src/config/load-node-config.js'
import type { NodeConfigFlags } from '../../../src/config/node-config.js'
import { ExoNode } from '../../../src/node/exo-node.js'
import { LocalInferenceService } from '../../../src/node/local-inference-service.js'
import { ggmlShardEngine } from '../../../src/node/ggml-shard-engine.js'
import { createLogger, setLogLevel } from '../../../src/shared/log.js'
import type { GenerationEvent, InferenceRequest, InferenceService } from '../../../src/shared/inference.js'

const log = createLogger('test:engine-node')
const collect = (v: string, prev: string[]): string[] => [...prev, v]
const program = new Command()
  .option('--http-port <port>').option('--p2p-port <port>').option('--host <address>')
  .option('--peer <multiaddr>', '', collect, []).option('--no-mdns').option('--data-dir <dir>')
  .option('--name <name>').option('--model <path>', '', collect, []).option('--log-level <level>')
  .allowUnknownOption(false)
program.parse(['node', 'engine-node', ...process.argv.slice(2)])
const flags: NodeConfigFlags = { ...program.opts<NodeConfigFlags>() }
if (program.getOptionValueSource('mdns') !== 'cli') delete flags.mdns
const config = loadNodeConfig(flags)
setLogLevel(config.logLevel)

const local = new LocalInferenceService({ engine: ggmlShardEngine, modelPaths: config.models, bundledModelPath: null, nodeName: config.name, threads: 1 })
const observed: InferenceService = {
  listModels: async (o) => await local.listModels(o),
  countTokens: async (r, o) => await local.countTokens(r, o),
  async * generate (req: InferenceRequest, o: { signal: AbortSignal }): AsyncGenerator<GenerationEvent> {
    let tokens = 0
    for await (const ev of local.generate(req, o)) {
      if (ev.type === 'token') tokens++
      else log.info({ request: req.id, finishReason: ev.finishReason, tokens, maxTokens: req.maxTokens }, 'generation finished')
      yield ev
    }
  }
}
const version = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version
const node = new ExoNode(config, { version, inference: observed })
process.on('SIGTERM', () => { void node.stop().then(() => process.exit(0), () => process.exit(1)) })
await node.start()
