import { join } from 'node:path'
import { hubConfigFromEnv } from '../models/hub-config.js'
import { ModelStore } from '../models/model-store.js'
import { pullModel } from '../models/pull-model.js'
import { throwIfAborted } from '../shared/errors/exo-error.js'
import type { ModelPuller, PullEvent } from '../shared/pull-events.js'

/**
 * The node's model store for the HTTP API (Ollama `/api/pull`, `/api/delete`): pulls into `<dataDir>/models`
 * one at a time (two pulls of one model must not share a partial file), Hub settings from the environment.
 */
export class NodeModelPuller implements ModelPuller {
  private readonly store: ModelStore
  private queue: Promise<unknown> = Promise.resolve()

  constructor (private readonly dataDir: string, private readonly env: NodeJS.ProcessEnv = process.env) {
    this.store = new ModelStore(join(dataDir, 'models'))
  }

  async pull (ref: string, options: { signal: AbortSignal, onEvent: (e: PullEvent) => void }): Promise<{ id: string }> {
    const run = this.queue.then(async () => {
      throwIfAborted(options.signal)
      const r = await pullModel(ref, { modelsDir: this.store.dir, hub: hubConfigFromEnv(this.env), signal: options.signal, onEvent: options.onEvent })
      return { id: r.id }
    })
    this.queue = run.catch(() => {})
    return await run
  }

  async remove (id: string, options: { signal: AbortSignal }): Promise<void> {
    throwIfAborted(options.signal)
    await this.store.remove(id)
  }
}
