import cliProgress from 'cli-progress'
import type { PullEvent } from '../shared/pull-events.js'

/** `1.5 MiB` (binary units, one decimal from KiB up). */
export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[i]!}`
}

/** `42s`, `3m05s`, `2h07m`; `--` when unknown. */
export function formatEta (seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '--'
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

/** Bytes per second over the last `windowMs` of samples (resumed bytes do not count as speed). */
export class RateMeter {
  private readonly samples: Array<{ t: number, bytes: number }> = []
  constructor (private readonly windowMs = 5000) {}

  sample (t: number, bytes: number): number | undefined {
    this.samples.push({ t, bytes })
    while (this.samples.length > 2 && t - this.samples[0]!.t > this.windowMs) this.samples.shift()
    const first = this.samples[0]!
    const dt = (t - first.t) / 1000
    return dt <= 0 ? undefined : Math.max(0, (bytes - first.bytes) / dt)
  }
}

/** The line `exo-p2p pull` prints per second when stdout is not a TTY. */
export function progressLine (name: string, completed: number, total: number, bytesPerSecond: number | undefined): Record<string, unknown> {
  const eta = bytesPerSecond === undefined || bytesPerSecond <= 0 ? undefined : (total - completed) / bytesPerSecond
  return { type: 'progress', file: name, completed, total, bytesPerSecond: bytesPerSecond === undefined ? null : Math.round(bytesPerSecond), etaSeconds: eta === undefined ? null : Math.round(eta) }
}

export interface PullReporter {
  onEvent: (e: PullEvent) => void
  stop: () => void
}

/**
 * Draws a pull: one `cli-progress` bar per file (bytes, rate, ETA) on a TTY; otherwise one JSON line per event
 * and at most one progress line per second per file.
 */
export function createPullReporter (out: NodeJS.WriteStream, now: () => number = Date.now): PullReporter {
  const meters = new Map<string, RateMeter>()
  const lastLine = new Map<string, number>()
  if (out.isTTY !== true) {
    const write = (o: Record<string, unknown>): void => { out.write(`${JSON.stringify(o)}\n`) }
    return {
      onEvent: (e) => {
        if (e.type !== 'progress') { write(e.type === 'resolved' ? { ...e } : e); return }
        const t = now()
        const meter = meters.get(e.name) ?? new RateMeter()
        meters.set(e.name, meter)
        const rate = meter.sample(t, e.completed)
        if (e.completed < e.total && t - (lastLine.get(e.name) ?? -Infinity) < 1000) return
        lastLine.set(e.name, t)
        write(progressLine(e.name, e.completed, e.total, rate))
      },
      stop: () => {}
    }
  }
  const multi = new cliProgress.MultiBar({
    format: '{name} |{bar}| {percentage}% {done}/{size} {rate} ETA {etaText}',
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    barsize: 30,
    stream: out
  }, cliProgress.Presets.shades_classic)
  const bars = new Map<string, cliProgress.SingleBar>()
  const payload = (name: string, completed: number, total: number, rate: number | undefined, note = ''): Record<string, string> => ({
    name, done: formatBytes(completed), size: formatBytes(total), rate: note !== '' ? note : rate === undefined ? '' : `${formatBytes(rate)}/s`,
    etaText: rate === undefined || rate <= 0 ? '--' : formatEta((total - completed) / rate)
  })
  return {
    onEvent: (e) => {
      if (e.type === 'resolved') { multi.log(`${e.repo}${e.commit !== undefined ? `@${e.commit.slice(0, 12)}` : ''}: ${e.files.map((f) => `${f.name} (${formatBytes(f.size)})`).join(', ')}\n`); return }
      if (e.type === 'file') {
        const note = e.source === 'hf-cache' ? 'from the HF cache' : e.source === 'store' ? 'already here' : ''
        bars.set(e.name, multi.create(Math.max(1, e.total), e.completed, payload(e.name, e.completed, e.total, undefined, note)))
        meters.set(e.name, new RateMeter())
        return
      }
      if (e.type === 'progress') {
        const rate = meters.get(e.name)?.sample(now(), e.completed)
        bars.get(e.name)?.update(e.completed, payload(e.name, e.completed, e.total, rate))
        return
      }
      if (e.type === 'verifying') { bars.get(e.name)?.update({ rate: 'verifying sha256', etaText: '--' }); return }
      if (e.type === 'file-done') bars.get(e.name)?.update({ etaText: '0s' })
    },
    stop: () => { multi.stop() }
  }
}
