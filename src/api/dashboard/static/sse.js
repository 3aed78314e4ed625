// Pure: Server-Sent Events parsing (https://html.spec.whatwg.org/multipage/server-sent-events.html)
// and the tokens/s meter of the chat panel.

/**
 * Incremental SSE parser: feed it text as it arrives, get complete events back.
 * @returns {{ push: (chunk: string) => Array<{ event: string, data: string }>, end: () => Array<{ event: string, data: string }> }}
 */
export function createSseParser () {
  let buf = ''
  let event = ''
  /** @type {string[]} */
  let data = []
  /** @param {string} line @param {Array<{ event: string, data: string }>} out */
  const line = (l, out) => {
    if (l === '') {
      if (data.length > 0) out.push({ event: event || 'message', data: data.join('\n') })
      event = ''
      data = []
      return
    }
    if (l.startsWith(':')) return
    const i = l.indexOf(':')
    const field = i < 0 ? l : l.slice(0, i)
    let value = i < 0 ? '' : l.slice(i + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') data.push(value)
    else if (field === 'event') event = value
  }
  return {
    push (chunk) {
      buf += chunk
      /** @type {Array<{ event: string, data: string }>} */
      const out = []
      let m
      while ((m = /\r\n|\r|\n/.exec(buf)) !== null) {
        // a lone \r at the end of the buffer may be the first half of \r\n: wait for more
        if (m[0] === '\r' && m.index === buf.length - 1) break
        line(buf.slice(0, m.index), out)
        buf = buf.slice(m.index + m[0].length)
      }
      return out
    },
    end () {
      /** @type {Array<{ event: string, data: string }>} */
      const out = []
      if (buf !== '') line(buf, out)
      buf = ''
      line('', out)
      return out
    }
  }
}

/**
 * Reads an SSE response body. Stops when the body ends or `signal` aborts (the fetch's own abort).
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<{ event: string, data: string }>}
 */
export async function * readSse (body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  const parser = createSseParser()
  try {
    while (true) {
      const { value, done } = await reader.read()
      if (done) break
      yield * parser.push(value)
    }
    yield * parser.end()
  } finally {
    reader.releaseLock()
  }
}

/**
 * Decode speed: tokens after the first one over the time since the first one arrived
 * (the first token's wait is prefill, shown separately as time to first token).
 * @param {number} startedAt when the request was sent (ms)
 */
export function createTokenMeter (startedAt) {
  let first = -1
  let last = -1
  let n = 0
  return {
    /** @param {number} now @param {number} [count] tokens in this chunk */
    token (now, count = 1) {
      if (n === 0) first = now
      last = now
      n += count
    },
    /** @param {number} [now] */
    stats (now) {
      const tNow = now ?? last
      const decodeMs = n > 1 ? last - first : 0
      return {
        tokens: n,
        ttftMs: n > 0 ? first - startedAt : undefined,
        tokensPerSec: n > 1 && decodeMs > 0 ? (n - 1) / (decodeMs / 1000) : undefined,
        elapsedMs: tNow - startedAt
      }
    }
  }
}
