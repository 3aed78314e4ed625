import { z } from 'zod'
import { AbortedError } from '../shared/errors/exo-error.js'
import { HubAuthError, HubHttpError, HubRepoNotFoundError, HubUnreachableError } from '../shared/errors/pull-errors.js'
import { parseContentRange } from './range-plan.js'
import type { HubFile } from './quant-select.js'

/** Where a file's bytes are, from `GET {endpoint}/{repo}/resolve/{rev}/{path}` without following the CDN redirect. */
export interface ResolvedFile {
  /** URL that serves the bytes (with Range): the redirect target, or the resolve URL itself when it answered 2xx */
  url: string
  /** whether `url` is on the Hub's origin, the only origin that may see the token */
  hubOrigin: boolean
  /** `X-Repo-Commit`: the 40-hex commit the revision resolved to */
  commit: string | undefined
  /** `X-Linked-Etag` (else `ETag`), unquoted: the sha256 of an LFS file, the git sha1 of a plain one */
  etag: string | undefined
  /** `X-Linked-Size`, else the total of `Content-Range` */
  size: number | undefined
}

export interface HubClientOptions {
  endpoint: string
  token: string | undefined
  fetch?: typeof fetch
}

const treeEntry = z.object({
  type: z.string(),
  path: z.string(),
  oid: z.string().default(''),
  size: z.number().int().nonnegative().default(0),
  lfs: z.object({ oid: z.string(), size: z.number().int().nonnegative() }).loose().nullish()
}).loose()
const MAX_PAGES = 1000
const MAX_REDIRECTS = 5

function encodePath (path: string): string {
  return path.split('/').map(encodeURIComponent).join('/')
}

/** `W/"abc"` → `abc` (python's normalisation), `-gzip` suffixes of CDN etags removed. */
export function normalizeEtag (value: string | null): string | undefined {
  if (value === null) return undefined
  const v = value.trim().replace(/^W\//, '').replace(/^"|"$/g, '').replace(/-gzip$/, '')
  return v === '' ? undefined : v
}

/** The `rel="next"` URL of a `Link` header. */
export function nextLink (link: string | null): string | undefined {
  if (link === null) return undefined
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;(.*)$/.exec(part.trim())
    if (m !== null && /\brel\s*=\s*"?next"?/i.test(m[2]!)) return m[1]
  }
  return undefined
}

/** The Hub's plain HTTP API over node's fetch: tree listing and file resolution. The token goes to the Hub origin only. */
export class HubClient {
  readonly endpoint: string
  private readonly origin: string
  private readonly fetchImpl: typeof fetch

  constructor (private readonly options: HubClientOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '')
    this.origin = new URL(this.endpoint).origin
    const f = options.fetch ?? fetch
    // network failures become typed errors; an abort stays an abort
    this.fetchImpl = async (input, init) => {
      try {
        return await f(input, init)
      } catch (err) {
        if (init?.signal?.aborted === true) throw new AbortedError('request aborted', { cause: init.signal.reason })
        throw new HubUnreachableError(String(input), err)
      }
    }
  }

  /** `Authorization` for `url` when it is on the Hub's origin and a token is set; nothing otherwise. */
  authHeaders (url: string): Record<string, string> {
    if (this.options.token === undefined || new URL(url).origin !== this.origin) return {}
    return { authorization: `Bearer ${this.options.token}` }
  }

  /** Every file of `repo` at `revision` (`tree?recursive=true`, following `Link: rel="next"` pages). */
  async listFiles (repo: string, revision: string, signal: AbortSignal): Promise<HubFile[]> {
    let url: string | undefined = `${this.endpoint}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true&expand=false`
    const out: HubFile[] = []
    for (let page = 0; url !== undefined; page++) {
      if (page >= MAX_PAGES) throw new HubHttpError(url, 200, `more than ${MAX_PAGES} pages of files`)
      const res: Response = await this.fetchImpl(url, { headers: { accept: 'application/json', ...this.authHeaders(url) }, signal, redirect: 'follow' })
      if (!res.ok) await this.throwFor(res, repo, `revision ${revision}`)
      const parsed = z.array(treeEntry).safeParse(await res.json().catch(() => undefined))
      if (!parsed.success) throw new HubHttpError(url, res.status, 'the tree listing is not the Hub\'s JSON')
      for (const e of parsed.data) {
        if (e.type !== 'file') continue
        out.push({ path: e.path, size: e.lfs?.size ?? e.size, sha256: e.lfs?.oid.replace(/^sha256:/, ''), oid: e.oid })
      }
      const next = nextLink(res.headers.get('link'))
      url = next === undefined ? undefined : new URL(next, url).href
    }
    return out
  }

  /**
   * Resolves `path` at `revision` (a branch or a commit): follows same-origin redirects (renamed repos) and stops
   * at the first redirect to another origin (the CDN), whose signed URL expires: resolve again before each retry.
   */
  async resolveFile (repo: string, revision: string, path: string, signal: AbortSignal): Promise<ResolvedFile> {
    let url = `${this.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(path)}`
    let commit: string | undefined
    let etag: string | undefined
    let size: number | undefined
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const res = await this.fetchImpl(url, { headers: { range: 'bytes=0-0', ...this.authHeaders(url) }, signal, redirect: 'manual' })
      await res.body?.cancel().catch(() => {})
      commit = res.headers.get('x-repo-commit') ?? commit
      etag = normalizeEtag(res.headers.get('x-linked-etag')) ?? etag ?? normalizeEtag(res.headers.get('etag'))
      const linkedSize = res.headers.get('x-linked-size')
      if (linkedSize !== null && /^\d+$/.test(linkedSize)) size = Number(linkedSize)
      if (res.status >= 300 && res.status < 400) {
        const location = res.headers.get('location')
        if (location === null) throw new HubHttpError(url, res.status, 'redirect without Location')
        const target = new URL(location, url)
        if (target.origin === this.origin) { url = target.href; continue }
        return { url: target.href, hubOrigin: false, commit, etag, size }
      }
      if (res.status === 200 || res.status === 206) {
        size ??= parseContentRange(res.headers.get('content-range'))?.total ?? (res.status === 200 ? Number(res.headers.get('content-length') ?? NaN) : undefined)
        return { url, hubOrigin: true, commit, etag, size: Number.isFinite(size) ? size : undefined }
      }
      await this.throwFor(res, repo, `file ${path} at revision ${revision}`)
    }
    throw new HubHttpError(url, 310, `more than ${MAX_REDIRECTS} redirects`)
  }

  private async throwFor (res: Response, repo: string, what: string): Promise<never> {
    const code = res.headers.get('x-error-code') ?? ''
    const message = res.headers.get('x-error-message') ?? (await res.text().catch(() => '')).slice(0, 200)
    const hadToken = this.options.token !== undefined
    if (code === 'RepoNotFound') {
      throw new HubRepoNotFoundError(repo, `repository ${repo}${hadToken ? '' : ' (if it is private, set HF_TOKEN)'}`)
    }
    if (code === 'GatedRepo' || res.status === 401 || res.status === 403) throw new HubAuthError(repo, res.status, hadToken)
    if (code === 'RevisionNotFound' || code === 'EntryNotFound' || res.status === 404) throw new HubRepoNotFoundError(repo, code === 'RevisionNotFound' ? what.replace(/^.* at /, '') : what)
    throw new HubHttpError(res.url !== '' ? res.url : this.endpoint, res.status, message)
  }
}
