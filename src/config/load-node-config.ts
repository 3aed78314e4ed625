import { existsSync, readFileSync } from 'node:fs'
import { homedir, hostname, totalmem } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { ConfigError } from '../shared/errors/config-errors.js'
import { readClusterKeyFile } from './cluster-key-file.js'
import { DEFAULT_HOST, DEFAULT_HTTP_PORT, DEFAULT_P2P_PORT, rawConfigSchema } from './node-config.js'
import type { NodeConfig, NodeConfigFlags, RawConfig } from './node-config.js'

/** Environment variables, each the env form of a config-file key. Lists are comma-separated. */
export const ENV_VARS = {
  EXO_P2P_NAME: 'name',
  EXO_P2P_DATA_DIR: 'dataDir',
  EXO_P2P_HOST: 'host',
  EXO_P2P_HTTP_PORT: 'httpPort',
  EXO_P2P_P2P_PORT: 'p2pPort',
  EXO_P2P_PEERS: 'peers',
  EXO_P2P_CLUSTER_KEY: 'clusterKeyFile',
  EXO_P2P_MDNS: 'mdns',
  EXO_P2P_MEMORY_BUDGET: 'memoryBudgetMb',
  EXO_P2P_MODELS: 'models',
  EXO_P2P_LOG_LEVEL: 'logLevel',
  EXO_P2P_API_KEY: 'apiKey',
  EXO_P2P_METRICS_PUBLIC: 'metricsPublic',
  EXO_P2P_THREADS: 'threads',
  EXO_P2P_FLASH_ATTENTION: 'flashAttention',
  EXO_P2P_FETCH_MAX_RATE: 'fetchMaxRateMb',
  EXO_P2P_FETCH_WHOLE: 'fetchWhole',
  EXO_P2P_GPU: 'gpu',
  EXO_P2P_GPU_DEVICE: 'gpuDevice',
  EXO_P2P_GPU_LAYERS: 'gpuLayers',
  EXO_P2P_MAX_SEQUENCES: 'maxSequences',
  EXO_P2P_MAX_QUEUE: 'maxQueue',
  EXO_P2P_PREFIX_CACHE: 'prefixCacheMb',
  EXO_P2P_TEST_TAMPER_WEIGHTS: 'testTamperWeights',
  EXO_P2P_TEST_MS_PER_LAYER: 'testMsPerLayer'
} as const

function parseSource (source: string, raw: Record<string, unknown>): RawConfig {
  const parsed = rawConfigSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ConfigError(`${source}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`)
  }
  return parsed.data
}

function fromEnv (env: NodeJS.ProcessEnv): RawConfig {
  const raw: Record<string, unknown> = {}
  for (const [name, key] of Object.entries(ENV_VARS)) {
    const value = env[name]
    if (value === undefined || value === '') continue
    if (key === 'peers' || key === 'models') raw[key] = value.split(',').map((s) => s.trim()).filter((s) => s !== '')
    else if (key === 'mdns' || key === 'flashAttention' || key === 'metricsPublic' || key === 'fetchWhole' || key === 'testTamperWeights') {
      if (!/^(1|0|true|false|on|off)$/i.test(value)) throw new ConfigError(`${name}: expected true/false, got "${value}"`)
      raw[key] = /^(1|true|on)$/i.test(value)
    } else raw[key] = value
  }
  return parseSource('environment', raw)
}

function fromFlags (flags: NodeConfigFlags): RawConfig {
  const raw: Record<string, unknown> = {
    name: flags.name,
    dataDir: flags.dataDir,
    host: flags.host,
    httpPort: flags.httpPort,
    p2pPort: flags.p2pPort,
    peers: flags.peer !== undefined && flags.peer.length > 0 ? flags.peer : undefined,
    clusterKeyFile: flags.clusterKey,
    mdns: flags.mdns,
    memoryBudgetMb: flags.memoryBudget,
    models: flags.model !== undefined && flags.model.length > 0 ? flags.model : undefined,
    logLevel: flags.logLevel,
    apiKey: flags.apiKey,
    metricsPublic: flags.metricsPublic,
    threads: flags.threads,
    flashAttention: flags.flashAttention,
    fetchMaxRateMb: flags.fetchMaxRate,
    fetchWhole: flags.fetchWhole,
    gpu: flags.gpu,
    gpuDevice: flags.gpuDevice,
    gpuLayers: flags.gpuLayers,
    maxSequences: flags.maxSequences,
    maxQueue: flags.maxQueue,
    prefixCacheMb: flags.prefixCacheMb
  }
  for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k]
  return parseSource('flags', raw)
}

function fromFile (file: string): RawConfig {
  let json: unknown
  try {
    json = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${(err as Error).message}`, { cause: err })
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`config file ${file}: not a JSON object`)
  return parseSource(`config file ${file}`, json as Record<string, unknown>)
}

const pick = <K extends keyof RawConfig>(key: K, ...sources: RawConfig[]): RawConfig[K] => {
  for (const s of sources) if (s[key] !== undefined) return s[key]
  return undefined
}

/**
 * The ONLY reader of flags, environment and config files. Config file: `--config`, else `EXO_P2P_CONFIG`,
 * else `<dataDir>/config.json` when it exists. Relative paths resolve against `cwd`.
 */
export function loadNodeConfig (flags: NodeConfigFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): NodeConfig {
  const f = fromFlags(flags)
  const e = fromEnv(env)
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(cwd, p))
  const explicitFile = flags.config ?? (env.EXO_P2P_CONFIG !== '' ? env.EXO_P2P_CONFIG : undefined)
  if (explicitFile !== undefined && !existsSync(abs(explicitFile))) throw new ConfigError(`config file ${explicitFile} does not exist`)
  const preDataDir = abs(pick('dataDir', f, e) ?? join(homedir(), '.exo-p2p'))
  const defaultFile = join(preDataDir, 'config.json')
  const configFile = explicitFile !== undefined ? abs(explicitFile) : existsSync(defaultFile) ? defaultFile : undefined
  const c = configFile !== undefined ? fromFile(configFile) : {}
  const src = [f, e, c]
  const clusterKeyFile = pick('clusterKeyFile', ...src)
  const config: NodeConfig = {
    name: pick('name', ...src) ?? hostname().slice(0, 64),
    dataDir: abs(pick('dataDir', ...src) ?? preDataDir),
    host: pick('host', ...src) ?? DEFAULT_HOST,
    httpPort: pick('httpPort', ...src) ?? DEFAULT_HTTP_PORT,
    p2pPort: pick('p2pPort', ...src) ?? DEFAULT_P2P_PORT,
    peers: Object.freeze([...(pick('peers', ...src) ?? [])]),
    clusterKeyHex: clusterKeyFile !== undefined ? readClusterKeyFile(abs(clusterKeyFile)) : undefined,
    clusterKeyFile: clusterKeyFile !== undefined ? abs(clusterKeyFile) : undefined,
    mdns: pick('mdns', ...src) ?? true,
    memoryBudgetBytes: (pick('memoryBudgetMb', ...src) ?? Math.floor(totalmem() / 2 / 2 ** 20)) * 2 ** 20,
    models: Object.freeze([...(pick('models', ...src) ?? [])]),
    logLevel: pick('logLevel', ...src) ?? 'info',
    apiKey: pick('apiKey', ...src),
    metricsPublic: pick('metricsPublic', ...src) ?? false,
    threads: pick('threads', ...src) ?? 1,
    flashAttention: pick('flashAttention', ...src) ?? true,
    fetchMaxBytesPerSec: ((mb) => mb === undefined ? undefined : Math.round(mb * 1e6))(pick('fetchMaxRateMb', ...src)),
    fetchWhole: pick('fetchWhole', ...src) ?? false,
    gpu: pick('gpu', ...src) ?? 'auto',
    gpuDevice: pick('gpuDevice', ...src) ?? 0,
    gpuLayers: pick('gpuLayers', ...src) ?? 'auto',
    maxSequences: pick('maxSequences', ...src),
    maxQueue: pick('maxQueue', ...src),
    prefixCacheBytes: ((mb) => mb === undefined ? undefined : mb * 2 ** 20)(pick('prefixCacheMb', ...src)),
    testTamperWeights: pick('testTamperWeights', f, e) ?? false,
    testMsPerLayer: pick('testMsPerLayer', f, e),
    configFile
  }
  return Object.freeze(config)
}
