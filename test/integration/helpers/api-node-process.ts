// A real exo-p2p node process for the API tests: ExoNode (mesh + HTTP app) with the local inference
// service, HTTP and p2p on 127.0.0.1 with free ports, mDNS off. Prints its ExoNodeInfo as one JSON line.
// Until `exo-p2p start` wires the engine in (lead, at merge), this stands in for
// `node bin/exo-p2p.js start --host 127.0.0.1 --http-port 0 --p2p-port 0 --no-mdns --data-dir DIR`.
import '../../../src/shared/polyfills.js'
import { loadNodeConfig } from '../../../src/config/load-node-config.js'
import { ExoNode } from '../../../src/node/exo-node.js'
import { LocalInferenceService } from '../../../src/node/local-inference-service.js'
import { ggmlShardEngine } from '../../../src/node/ggml-shard-engine.js'

const dataDir = process.argv[2]
if (dataDir === undefined) throw new Error('usage: api-node-process.ts DATA_DIR')
const config = loadNodeConfig({ host: '127.0.0.1', httpPort: 0, p2pPort: 0, mdns: false, dataDir, logLevel: 'warn', name: 'api-test-node' }, {})
const inference = new LocalInferenceService({ engine: ggmlShardEngine, threads: 1, nodeName: config.name })
const node = new ExoNode(config, { version: '0.1.0-test', inference })
const info = await node.start()
process.stdout.write(`${JSON.stringify(info)}\n`)
process.on('SIGTERM', () => {
  node.stop().then(async () => { await inference.dispose() }).finally(() => { process.exit(0) })
})
