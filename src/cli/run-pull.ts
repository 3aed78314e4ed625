import { join } from 'node:path'
import { hubConfigFromEnv } from '../models/hub-config.js'
import { pullModel } from '../models/pull-model.js'
import { createPullReporter } from './pull-progress.js'
import type { PullResult } from '../models/pull-model.js'

/**
 * Pulls `ref` into `<dataDir>/models` with progress on stdout (bars on a TTY, JSON lines otherwise). Ctrl-C
 * aborts it; the partial download stays and the next pull resumes it.
 */
export async function runPull (ref: string, dataDir: string, options: { env?: NodeJS.ProcessEnv, signal?: AbortSignal } = {}): Promise<PullResult> {
  const ctl = new AbortController()
  const onSigint = (): void => { ctl.abort(new Error('SIGINT')) }
  process.once('SIGINT', onSigint)
  const reporter = createPullReporter(process.stdout)
  try {
    return await pullModel(ref, {
      modelsDir: join(dataDir, 'models'),
      hub: hubConfigFromEnv(options.env ?? process.env),
      signal: options.signal !== undefined ? AbortSignal.any([ctl.signal, options.signal]) : ctl.signal,
      onEvent: reporter.onEvent
    })
  } finally {
    reporter.stop()
    process.removeListener('SIGINT', onSigint)
  }
}
