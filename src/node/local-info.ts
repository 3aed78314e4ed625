import { existsSync, statSync } from 'node:fs'
import { availableParallelism, freemem, networkInterfaces } from 'node:os'
import { basename, join } from 'node:path'
import type { Logger } from '../shared/log.js'
import type { LocalInfo } from '../mesh/membership/membership-service.js'

/** Models on disk named by `--model PATH|ID`: a file path, or an id under `<dataDir>/models/<id>.gguf`. */
export function findLocalModels (entries: readonly string[], dataDir: string, log: Logger): LocalInfo['models'] {
  const out: LocalInfo['models'] = []
  for (const entry of entries) {
    const candidates = [entry, join(dataDir, 'models', `${entry}.gguf`)]
    const file = candidates.find((p) => existsSync(p) && statSync(p).isFile())
    if (file === undefined) { log.warn({ model: entry }, 'model not found on disk; not announced'); continue }
    out.push({ id: basename(file).replace(/\.gguf$/i, '').slice(0, 128), sizeBytes: statSync(file).size })
  }
  return out
}

/** Host capabilities sampled at each announcement. computeMsPerUnit is a hook (0 = not measured yet). */
export function sampleCapabilities (memoryBudgetBytes: number, computeMsPerUnit: () => number): LocalInfo['capabilities'] {
  return {
    memoryBudgetBytes,
    freeMemoryBytes: freemem(),
    cpuCores: Math.max(1, Math.min(4096, availableParallelism())),
    backend: 'cpu',
    computeMsPerUnit: computeMsPerUnit()
  }
}

/** The host other machines should use to reach a listener bound to `host` (0.0.0.0 → first LAN IPv4). */
export function advertisedHost (host: string): string {
  if (host !== '0.0.0.0') return host
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  return '127.0.0.1'
}
