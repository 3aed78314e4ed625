import { existsSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { findPulled } from '../models/find-pulled.js'
import { isHubRef, parseModelRef } from '../models/model-ref.js'
import { ModelStore } from '../models/model-store.js'
import { ModelFileNotFoundError } from '../shared/errors/pull-errors.js'
import { runPull } from './run-pull.js'

/** A value that names a file (`x.gguf`, `dir/x`, `./x`, `/x`, `~/x`) rather than a model id. */
function looksLikePath (value: string): boolean {
  return /\.gguf$/i.test(value) || /[/\\]/.test(value) || /^[.~]/.test(value)
}

/**
 * `start --model VALUE`, each VALUE: an existing file (kept); a Hub reference `org/repo[:QUANT]` (the stored copy,
 * pulled first when the store lacks it: becomes its path); a path that does not exist → `ModelFileNotFoundError`,
 * the node does not start; a bare model id (kept: a model of the store, the bundled default, or one that peers
 * hold, whose layers this node fetches from them).
 */
export async function resolveStartModels (entries: readonly string[], dataDir: string): Promise<string[]> {
  const store = new ModelStore(join(dataDir, 'models'))
  const out: string[] = []
  for (const entry of entries) {
    if (existsSync(resolve(entry)) && statSync(resolve(entry)).isFile()) { out.push(entry); continue }
    if (isHubRef(entry)) {
      const stored = await findPulled(store, parseModelRef(entry))
      out.push(stored?.paths[0] ?? (await runPull(entry, dataDir)).paths[0]!)
      continue
    }
    if (looksLikePath(entry)) throw new ModelFileNotFoundError(entry)
    out.push(entry)
  }
  return out
}
