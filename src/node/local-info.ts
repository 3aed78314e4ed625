import { existsSync, readdirSync, statSync } from 'node:fs'
import { availableParallelism, freemem, networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { parseSplitGgufName } from '../shared/split-gguf-name.js'
import { isLaterSplitPart, modelFiles, modelIdOfPath } from './model-registry.js'
import type { Logger } from '../shared/log.js'
import type { LocalInfo } from '../mesh/membership/membership-service.js'

/** The first part of the split model `id` in `dir` (`<id>-00001-of-NNNNN.gguf`), if there is one. */
function firstSplitPart (dir: string, id: string): string | undefined {
  let names: string[]
  try { names = readdirSync(dir) } catch { return undefined }
  const name = names.find((n) => { const s = parseSplitGgufName(n); return s?.prefix === id && s.no === 0 })
  return name === undefined ? undefined : join(dir, name)
}

/**
 * Models on disk named by `--model PATH|ID`: a file path (a split model by its first part), or an id under
 * `<dataDir>/models/` (`<id>.gguf`, or `<id>-00001-of-NNNNN.gguf`). Sizes count every part present.
 */
export function findLocalModels (entries: readonly string[], dataDir: string, log: Pick<Logger, 'warn'>): LocalInfo['models'] {
  const out: LocalInfo['models'] = []
  const isFile = (p: string): boolean => existsSync(p) && statSync(p).isFile()
  for (const entry of entries) {
    const dir = join(dataDir, 'models')
    const file = [entry, join(dir, `${entry}.gguf`)].find(isFile) ?? firstSplitPart(dir, entry)
    if (file === undefined) { log.warn({ model: entry }, 'model not found on disk; not announced'); continue }
    const sizeBytes = modelFiles(file).filter(isFile).reduce((a, p) => a + statSync(p).size, 0)
    out.push({ id: modelIdOfPath(file).slice(0, 128), sizeBytes })
  }
  return out
}

/** Every model in the store `<dataDir>/models/` (`*.gguf`, a split model by its first part), sizes of all parts present. */
export function storeModels (dataDir: string): LocalInfo['models'] {
  const dir = join(dataDir, 'models')
  let names: string[]
  try { names = readdirSync(dir) } catch { return [] }
  const out: LocalInfo['models'] = []
  for (const name of names.filter((n) => /\.gguf$/i.test(n) && !isLaterSplitPart(n)).sort()) {
    const path = join(dir, name)
    const size = (p: string): number => { try { const st = statSync(p); return st.isFile() ? st.size : -1 } catch { return -1 } }
    if (size(path) < 0) continue
    out.push({ id: modelIdOfPath(path).slice(0, 128), sizeBytes: modelFiles(path).reduce((a, p) => a + Math.max(0, size(p)), 0) })
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
