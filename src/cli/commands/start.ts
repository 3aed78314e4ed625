import type { Command } from 'commander'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadNodeConfig } from '../../config/load-node-config.js'
import type { NodeConfigFlags } from '../../config/node-config.js'
import type { ExoNode } from '../../node/exo-node.js'
import type { LocalInferenceService } from '../../node/local-inference-service.js'
import { ExoError } from '../../shared/errors/exo-error.js'
import { setLogLevel } from '../../shared/log.js'
import { resolveStartModels } from '../resolve-start-models.js'

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]
const version = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** `exo-p2p start`: runs a node until SIGINT/SIGTERM, then leaves the mesh cleanly. */
export default function register (program: Command): void {
  program.command('start')
    .description('run a node: join the mesh, serve the HTTP API; Ctrl-C leaves the mesh cleanly')
    .option('--http-port <port>', 'HTTP API port, 0 = any free port (default: 52415)')
    .option('--p2p-port <port>', 'libp2p TCP port, 0 = any free port (default: 4001)')
    .option('--host <address>', 'IPv4 address to listen on (default: 0.0.0.0)')
    .option('--peer <multiaddr>', 'static peer to dial and keep dialling, e.g. /ip4/10.0.0.2/tcp/4001 (repeatable)', collect)
    .option('--cluster-key <file>', 'cluster key file from `exo-p2p keygen` (default: none = open mesh)')
    .option('--no-mdns', 'disable mDNS discovery on the LAN (default: enabled)')
    .option('--data-dir <dir>', 'identity key, config.json, models (default: ~/.exo-p2p)')
    .option('--memory-budget <MB>', 'memory offered for model shards, MiB (default: half of RAM)')
    .option('--name <name>', 'node name shown to peers (default: host name)')
    .option('--model <path|id|org/repo:QUANT>', 'model file, id, or Hub reference (pulled when missing) this node holds (repeatable)', collect)
    .option('--config <file>', 'JSON config file (default: <data dir>/config.json if present)')
    .option('--api-key <key>', 'require this key on every HTTP route but the dashboard page (Bearer or x-api-key) (default: none)')
    .option('--metrics-public', 'with --api-key: GET /metrics answers without the key (default: off)')
    .option('--threads <n>', 'CPU threads per loaded shard (default: 1)')
    .option('--fetch-max-rate <MB/s>', 'cap on fetching model layers from peers, MB/s (default: no cap)')
    .option('--fetch-whole', 'when fetching layers from peers, also fetch the rest of the model file (after them), then hold the model (default: only the layers this node runs)')
    .option('--max-sequences <n>', 'sequences this node runs at once (default: what the memory budget holds of full-context KV caches, ≤ 64)')
    .option('--max-queue <n>', 'requests that wait for a slot beyond that; more get HTTP 429 (default: as many as --max-sequences)')
    .option('--prefix-cache-mb <MB>', 'cap on the KV of finished requests kept for prefix reuse; 0 = off (default: what the memory budget leaves)')
    .option('--no-flash-attention', 'disable flash attention; must match on every node (default: on)')
    .option('--gpu <backend>', 'auto|cuda|vulkan|metal|cpu: the best installed GPU backend with a device, one by name, or none (default: auto)')
    .option('--gpu-device <i>', 'GPU device index within the backend (default: 0)')
    .option('--gpu-layers <n|auto>', 'layers of this node\'s stages on the GPU (their last ones); auto = as many as fit its free memory (default: auto)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default: info)')
    .action(async (opts: NodeConfigFlags, cmd: Command) => {
      const flags: NodeConfigFlags = { ...opts }
      if (cmd.getOptionValueSource('mdns') !== 'cli') delete flags.mdns
      if (cmd.getOptionValueSource('flashAttention') !== 'cli') delete flags.flashAttention
      let node: ExoNode | undefined
      let inference: LocalInferenceService | undefined
      try {
        const loaded = loadNodeConfig(flags)
        setLogLevel(loaded.logLevel)
        // a Hub reference becomes the stored file's path (pulled first when missing); a missing file is an error
        const config = Object.freeze({ ...loaded, models: Object.freeze(await resolveStartModels(loaded.models, loaded.dataDir)) })
        // loaded here, not at the top: `exo-p2p peers` and the other light commands skip libp2p and ggml
        const [{ ExoNode }, { LocalInferenceService }, { ggmlShardEngine }, { announcedDevices, gpuOffloadFor }] = await Promise.all([
          import('../../node/exo-node.js'), import('../../node/local-inference-service.js'), import('../../node/ggml-shard-engine.js'), import('../../node/gpu-offload.js')
        ])
        // the compute backend before any shard loads; a requested backend that is missing is an error (exit 1)
        const backend = ggmlShardEngine.selectBackend?.(config.gpu, config.gpuDevice)
        const gpu = gpuOffloadFor(backend, config.gpuLayers)
        const deviceSpeed = { msPerLayer: 0 }
        inference = new LocalInferenceService({
          ...(gpu !== undefined ? { gpu } : {}),
          engine: ggmlShardEngine,
          threads: config.threads,
          flashAttention: config.flashAttention,
          modelPaths: [...config.models],
          modelsDir: join(config.dataDir, 'models'),
          nodeName: config.name,
          memoryBudgetBytes: config.memoryBudgetBytes,
          ...(config.prefixCacheBytes !== undefined ? { prefixCacheBytes: config.prefixCacheBytes } : {}),
          ...(config.maxSequences !== undefined ? { maxSequences: config.maxSequences } : {}),
          ...(config.maxQueue !== undefined ? { maxQueue: config.maxQueue } : {})
        })
        node = new ExoNode(config, {
          version,
          inference,
          devices: () => announcedDevices(backend, gpu, deviceSpeed.msPerLayer, config.gpuLayers),
          pipeline: { engine: ggmlShardEngine, local: inference, ...(config.testMsPerLayer !== undefined ? { msPerLayer: config.testMsPerLayer } : {}), ...(gpu !== undefined ? { gpu, onDeviceSpeed: (ms: number) => { deviceSpeed.msPerLayer = ms } } : {}) }
        })
        let stopping = false
        const shutdown = (signal: string): void => {
          if (stopping) { process.exit(130) }
          stopping = true
          console.log(`\n${signal}: leaving the mesh…`)
          node?.stop().then(async () => { await inference?.dispose() }).then(() => { process.exit(0) }, (err: Error) => { console.error(`exo-p2p: stop failed: ${err.message}`); process.exit(1) })
        }
        process.on('SIGINT', () => { shutdown('SIGINT') })
        process.on('SIGTERM', () => { shutdown('SIGTERM') })
        const info = await node.start()
        console.log(`exo-p2p node "${info.name}" is running`)
        console.log(`  peer id:   ${info.peerId}`)
        console.log(`  HTTP API:  ${info.httpUrl}`)
        for (const a of info.p2pAddresses) console.log(`  listening: ${a}`)
        console.log(`  cluster key: ${info.clusterKey ? 'yes' : 'NONE (open mesh)'}`)
        const d = backend?.device
        console.log(`  compute:   ${d === undefined ? 'CPU' : `${backend!.backend} ${d.name} (${d.description}), ${(d.totalBytes / 2 ** 30).toFixed(1)} GiB, GPU layers: ${String(config.gpuLayers)}`}`)
        console.log('Press Ctrl-C to leave the mesh.')
      } catch (err) {
        await node?.stop().catch(() => {})
        await inference?.dispose().catch(() => {})
        if (!(err instanceof ExoError)) throw err
        console.error(`exo-p2p start: ${err.message}`)
        process.exit(1)
      }
    })
}
