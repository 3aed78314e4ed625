// HTTP client of the page: same origin as the node that served it. Sends the API key when one is stored;
// on 401 asks for it once (through `askKey`), stores it in localStorage and retries.

const KEY_STORAGE = 'exo-p2p.apiKey'

export class UnauthorizedError extends Error {
  constructor () { super('the node requires an API key'); this.name = 'UnauthorizedError' }
}

export class HttpError extends Error {
  /** @param {number} status @param {string} message */
  constructor (status, message) { super(message); this.name = 'HttpError'; this.status = status }
}

/**
 * @param {{ askKey: (reason: string) => Promise<string | undefined> }} opts
 *   askKey shows the key dialog; resolves undefined when the user cancels.
 */
export function createApi ({ askKey }) {
  /** @type {Promise<string | undefined> | undefined} one dialog at a time, shared by concurrent 401s */
  let asking

  const storedKey = () => {
    try { return localStorage.getItem(KEY_STORAGE) ?? undefined } catch { return undefined }
  }

  /** @param {RequestInit} init @param {string | undefined} key */
  const withKey = (init, key) => {
    const headers = new Headers(init.headers)
    if (key !== undefined && key !== '') headers.set('authorization', `Bearer ${key}`)
    return { ...init, headers }
  }

  /**
   * fetch with the key. Throws UnauthorizedError when the user declines to give one.
   * @param {string} path
   * @param {RequestInit} [init]
   */
  async function request (path, init = {}) {
    let key = storedKey()
    let res = await fetch(path, withKey(init, key))
    while (res.status === 401) {
      if (init.signal?.aborted === true) throw new UnauthorizedError()
      await res.body?.cancel().catch(() => {})
      const rejected = key
      if (asking === undefined) {
        asking = askKey(rejected === undefined ? 'This node requires an API key.' : 'The stored API key was rejected.')
          .finally(() => { asking = undefined })
      }
      const entered = await asking
      if (entered === undefined || entered === '') throw new UnauthorizedError()
      try { localStorage.setItem(KEY_STORAGE, entered) } catch {}
      key = entered
      res = await fetch(path, withKey(init, key))
    }
    return res
  }

  /** @param {string} path @param {RequestInit} [init] */
  async function json (path, init) {
    const res = await request(path, init)
    if (!res.ok) throw new HttpError(res.status, await errorMessage(res))
    return res.json()
  }

  return {
    request,
    json,
    hasKey: () => storedKey() !== undefined,
    forgetKey: () => { try { localStorage.removeItem(KEY_STORAGE) } catch {} }
  }
}

/** The error text of a failed response: OpenAI-style `{ error: { message } }`, or the raw text. @param {Response} res */
export async function errorMessage (res) {
  const text = await res.text().catch(() => '')
  try {
    const body = JSON.parse(text)
    const msg = body?.error?.message ?? body?.error ?? body?.message
    if (typeof msg === 'string') return `${res.status}: ${msg}`
  } catch {}
  return `${res.status} ${res.statusText}${text !== '' ? `: ${text.slice(0, 200)}` : ''}`
}
