import type { Response } from 'express'

/**
 * Where a streaming dialect writes its frames. `write` resolves once the socket accepted the bytes
 * (waits for 'drain' under backpressure) and rejects never: after the client went away it is a no-op.
 */
export interface StreamSink {
  /** one SSE event (`event:` line optional) or one NDJSON line, depending on the sink */
  send (data: unknown, event?: string): Promise<void>
  /** raw text (SSE `data: [DONE]`) */
  sendRaw (text: string): Promise<void>
  end (): void
}

/** Server-sent events on `res`: `event: <name>\ndata: <json>\n\n`. */
export function sseSink (res: Response): StreamSink {
  res.status(200)
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8')
  res.setHeader('Cache-Control', 'no-cache')
  res.setHeader('Connection', 'keep-alive')
  res.setHeader('X-Accel-Buffering', 'no')
  res.flushHeaders()
  return {
    send: async (data, event) => {
      if (event !== undefined && /[\r\n]/.test(event)) throw new Error('SSE event name must not contain a newline')
      await writeText(res, `${event !== undefined ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`)
    },
    sendRaw: async (text) => { await writeText(res, `data: ${text}\n\n`) },
    end: () => { if (!res.writableEnded) res.end() }
  }
}

/** Newline-delimited JSON on `res` (Ollama streaming). */
export function ndjsonSink (res: Response): StreamSink {
  res.status(200)
  res.setHeader('Content-Type', 'application/x-ndjson')
  res.setHeader('Cache-Control', 'no-cache')
  res.flushHeaders()
  return {
    send: async (data) => { await writeText(res, `${JSON.stringify(data)}\n`) },
    sendRaw: async (text) => { await writeText(res, `${text}\n`) },
    end: () => { if (!res.writableEnded) res.end() }
  }
}

async function writeText (res: Response, text: string): Promise<void> {
  if (res.writableEnded || res.destroyed) return
  if (res.write(text)) return
  await new Promise<void>((resolve) => {
    const done = (): void => { res.off('drain', done); res.off('close', done); resolve() }
    res.on('drain', done)
    res.on('close', done)
  })
}
