import { existsSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { findPulled } from '../models/find-pulled.js'
import { isHubRef, parseModelRef } from '../models/model-ref.js'
import { ModelStore } from '../models/model-store.js'
import { DEFAULT_MODEL_ID } from '../node/model-registry.js'
import { ModelFileNotFoundError } from '../shared/errors/pull-errors.js'
import { runPull } from './run-pull.js'

/**
 * `start --model VALUE`, each VALUE: an existing file (kept), a model id of the store or the bundled default
 * (kept), a Hub reference (the stored copy, pulled first when the store lacks it: becomes its path), else
 * `ModelFileNotFoundError` — the node does not start on a model it does not have.
 */
export async function resolveStartModels (entries: readonly string[], dataDir: string): Promise<string[]> {
  const store = new ModelStore(join(dataDir, 'models'))
  const out: string[] = []
  for (const entry of entries) {
    if (existsSync(resolve(entry)) && statSync(resolve(entry)).isFile()) { out.push(entry); continue }
    if (entry === DEFAULT_MODEL_ID || (await store.find(entry)) !== undefined) { out.push(entry); continue }
    if (!isHubRef(entry)) throw new ModelFileNotFoundError(entry)
    const stored = await findPulled(store, parseModelRef(entry))
    out.push(stored?.paths[0] ?? (await runPull(entry, dataDir)).paths[0]!)
  }
  return out
}
