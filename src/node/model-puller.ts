import { join } from 'node:path'
import { hubConfigFromEnv } from '../models/hub-config.js'
import { ModelStore } from '../models/model-store.js'
import { pullModel } from '../models/pull-model.js'
import { throwIfAborted } from '../shared/errors/exo-error.js'
import type { DownloadJson } from '../shared/cluster-state.js'
import type { ModelPuller, PullEvent } from '../shared/pull-events.js'

/** A finished or failed pull stays visible (dashboard, /cluster/state) this long. */
const KEEP_FINISHED_MS = 60_000

type Download = Omit<DownloadJson, 'updatedMsAgo'> & { updatedAt: number }

/**
 * The node's model store for the HTTP API (Ollama `/api/pull`, `/api/delete`): pulls into `<dataDir>/models`
 * one at a time (two pulls of one model must not share a partial file), Hub settings from the environment;
 * tracks the pulls for the dashboard.
 */
export class NodeModelPuller implements ModelPuller {
  private readonly store: ModelStore
  private queue: Promise<unknown> = Promise.resolve()
  private readonly active = new Map<string, Download>()

  /** `onPulled`: a pull finished (the node announces and serves the model without a restart) */
  constructor (dataDir: string, private readonly env: NodeJS.ProcessEnv = process.env, private readonly now: () => number = Date.now,
    private readonly onPulled: () => void = () => {}) {
    this.store = new ModelStore(join(dataDir, 'models'))
  }

  async pull (ref: string, options: { signal: AbortSignal, onEvent: (e: PullEvent) => void }): Promise<{ id: string }> {
    const d: Download = { ref, completed: 0, total: 0, state: 'resolving', updatedAt: this.now() }
    this.active.set(ref, d)
    const track = (e: PullEvent): void => {
      d.updatedAt = this.now()
      if (e.type === 'resolved') d.id = e.id
      else if (e.type === 'file' || e.type === 'progress') { d.file = e.name; d.completed = e.completed; d.total = e.total; d.state = 'downloading' } else if (e.type === 'verifying') d.state = 'verifying'
      else if (e.type === 'done') d.state = 'done'
      options.onEvent(e)
    }
    const run = this.queue.then(async () => {
      throwIfAborted(options.signal)
      const r = await pullModel(ref, { modelsDir: this.store.dir, hub: hubConfigFromEnv(this.env), signal: options.signal, onEvent: track })
      this.onPulled()
      return { id: r.id }
    })
    this.queue = run.catch(() => {})
    try {
      return await run
    } catch (err) {
      Object.assign(d, { state: 'failed', error: (err as Error).message, updatedAt: this.now() })
      throw err
    }
  }

  async remove (id: string, options: { signal: AbortSignal }): Promise<void> {
    throwIfAborted(options.signal)
    await this.store.remove(id)
    this.onPulled()
  }

  /** Running pulls, and those that ended less than a minute ago. */
  downloads (): DownloadJson[] {
    const t = this.now()
    const out: DownloadJson[] = []
    for (const [ref, d] of this.active) {
      if ((d.state === 'done' || d.state === 'failed') && t - d.updatedAt > KEEP_FINISHED_MS) { this.active.delete(ref); continue }
      const { updatedAt, ...rest } = d
      out.push({ ...rest, updatedMsAgo: t - updatedAt })
    }
    return out
  }
}
