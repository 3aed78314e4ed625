import type { LocalInfo } from '../mesh/membership/membership-service.js'

type Models = LocalInfo['models']

/** protocols/membership.md: `models` has at most 256 items */
const MAX_MODELS = 256

/**
 * The `models` of this node's announcement, kept current: `scan()` lists what is on disk now (the
 * `--model` files and the model store); `refresh()` rescans — every `intervalMs`, and right after a
 * pull — and calls `onChange` when the list changed, so a model pulled while the node runs (Ollama
 * `/api/pull`, `exo-p2p pull` into its data dir, a promoted peer fetch) is announced without a restart.
 */
export class LocalModelsWatch {
  private current: Models
  private key: string
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly scan: () => Models, private readonly onChange: () => void, private readonly intervalMs = 2000) {
    this.current = this.limit(scan())
    this.key = JSON.stringify(this.current)
  }

  get models (): Models { return this.current }

  start (): void {
    this.timer = setInterval(() => { this.refresh() }, this.intervalMs)
    this.timer.unref()
  }

  stop (): void { clearInterval(this.timer) }

  /** Rescans; true (and `onChange`) when the list changed. */
  refresh (): boolean {
    let next: Models
    try { next = this.limit(this.scan()) } catch { return false }
    const key = JSON.stringify(next)
    if (key === this.key) return false
    this.current = next
    this.key = key
    this.onChange()
    return true
  }

  private limit (models: Models): Models {
    const seen = new Set<string>()
    return models.filter((m) => !seen.has(m.id) && seen.add(m.id) !== undefined).slice(0, MAX_MODELS)
  }
}
