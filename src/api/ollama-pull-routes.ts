import { InvalidRequestError } from '../shared/errors/api-errors.js'
import { parseBody } from './dialects/common.js'
import { ollamaModelName } from './dialects/ollama.js'
import { deleteBody, ollamaPullLines, pullBody } from './dialects/ollama-pull.js'
import { disconnectSignal } from './generation-runner.js'
import type { Request, Response } from 'express'
import type { ModelPuller, PullEvent } from '../shared/pull-events.js'

/** Progress lines of one file at most this often (Ollama: every 60 ms). */
const PROGRESS_EVERY_MS = 100

function nameOf (b: { model?: string | undefined, name?: string | undefined }): string {
  const name = b.model ?? b.name
  if (name === undefined) throw new InvalidRequestError('model is required', 'model')
  return name
}

/** `POST /api/pull`: NDJSON progress in Ollama's shape (or one `{status:"success"}` with `stream:false`). */
export async function handleOllamaPull (models: ModelPuller | undefined, req: Request, res: Response): Promise<void> {
  const b = parseBody(pullBody, req.body)
  const name = ollamaModelName(nameOf(b))
  if (models === undefined) throw new InvalidRequestError('this node has no model store')
  const signal = disconnectSignal(res)
  if (b.stream === false) {
    await models.pull(name, { signal, onEvent: () => {} })
    res.json({ status: 'success' })
    return
  }
  res.status(200).setHeader('content-type', 'application/x-ndjson')
  const last = new Map<string, number>()
  const write = (o: Record<string, unknown>): void => { if (!res.writableEnded) res.write(`${JSON.stringify(o)}\n`) }
  const onEvent = (e: PullEvent): void => {
    if (e.type === 'progress' && e.completed < e.total) {
      const t = Date.now()
      if (t - (last.get(e.name) ?? 0) < PROGRESS_EVERY_MS) return
      last.set(e.name, t)
    }
    for (const line of ollamaPullLines(e)) write(line)
  }
  try {
    await models.pull(name, { signal, onEvent })
  } catch (err) {
    // headers are gone: Ollama reports a failed pull as a last `{"error": …}` line
    write({ error: err instanceof Error ? err.message : String(err) })
  }
  res.end()
}

/** `DELETE /api/delete`: 200 with an empty body, 404 when the store lacks the model. */
export async function handleOllamaDelete (models: ModelPuller | undefined, req: Request, res: Response): Promise<void> {
  const name = ollamaModelName(nameOf(parseBody(deleteBody, req.body)))
  if (models === undefined) throw new InvalidRequestError('this node has no model store')
  await models.remove(name, { signal: disconnectSignal(res) })
  res.status(200).end()
}
