import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * A local stand-in for the Hugging Face Hub, on two origins like the real one: the Hub (tree API, resolve →
 * 302 with X-Repo-Commit / X-Linked-Etag / X-Linked-Size) and a "CDN" that serves the bytes (Range → 206,
 * 416 past the end, 200 without Range). Counts what it serves, so tests can assert bytes sent over the wire.
 */
export interface FakeRepoFile { path: string, content: Uint8Array, /** stored in git (no lfs entry; etag = git sha1). Default false */ git?: boolean }
export interface FakeRepo { files: FakeRepoFile[], gated?: boolean, commit?: string }

export interface FakeHubOptions {
  repos: Record<string, FakeRepo>
  /** the token that opens gated repos */
  token?: string
  /** tree entries per page (Link: rel="next"). Default 1000 */
  pageSize?: number
  /** the CDN answers 200 with the whole file to every Range request */
  ignoreRange?: boolean
  /** the CDN serves this byte of every file flipped */
  flipByteAt?: number
  /** the CDN closes the connection once, after this many content bytes in total */
  dropAfterBytes?: number
  /** the CDN stops sending (connection left open) once, after this many content bytes in total */
  stallAfterBytes?: number
  /** the CDN writes 16 KiB per tick with this delay (ms) between writes. Default 0 */
  chunkDelayMs?: number
  /** the tree, X-Linked-Size and Content-Range totals say this many bytes more than the file has (416 past its real end) */
  announceExtraBytes?: number
}

export interface FakeHubStats {
  /** content bytes the CDN wrote */
  contentBytes: number
  /** content bytes per file path */
  bytesByPath: Map<string, number>
  /** requests that reached the CDN with an Authorization header (must stay 0) */
  cdnRequestsWithAuth: number
  /** Range headers the CDN saw, in order */
  ranges: string[]
  /** 416 answers of the CDN */
  status416: number
  treeRequests: number
  resolveRequests: number
  /** Authorization headers the Hub saw */
  hubAuth: string[]
}

export interface FakeHub {
  /** use as HF_ENDPOINT */
  endpoint: string
  cdnOrigin: string
  stats: FakeHubStats
  /** called after each content write with the running total; tests abort pulls from here */
  onContent: ((total: number) => void) | undefined
  close: () => Promise<void>
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const gitSha1 = (b: Uint8Array): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex')

async function listen (server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

export async function startFakeHub (o: FakeHubOptions): Promise<FakeHub> {
  const stats: FakeHubStats = { contentBytes: 0, bytesByPath: new Map(), cdnRequestsWithAuth: 0, ranges: [], status416: 0, treeRequests: 0, resolveRequests: 0, hubAuth: [] }
  const blobs = new Map<string, { repo: string, file: FakeRepoFile }>()
  for (const [repo, r] of Object.entries(o.repos)) for (const f of r.files) blobs.set(sha256(f.content), { repo, file: f })
  let dropped = false
  let stalled = false
  const commitOf = (repo: string): string => o.repos[repo]?.commit ?? createHash('sha1').update(repo).digest('hex')

  const fail = (res: ServerResponse, status: number, code: string): void => {
    res.writeHead(status, { 'x-error-code': code, 'x-error-message': code, 'content-type': 'application/json' }).end(JSON.stringify({ error: code }))
  }
  /** the repo of a request when the caller may see it; answers the error itself otherwise */
  const gate = (req: IncomingMessage, res: ServerResponse, repo: string): FakeRepo | undefined => {
    const r = o.repos[repo]
    if (r === undefined) { fail(res, 404, 'RepoNotFound'); return undefined }
    if (r.gated === true && req.headers.authorization !== `Bearer ${o.token ?? ''}`) { fail(res, 401, 'GatedRepo'); return undefined }
    return r
  }

  const hub = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (req.headers.authorization !== undefined) stats.hubAuth.push(req.headers.authorization)
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname)
    if (tree !== null) {
      stats.treeRequests++
      const r = gate(req, res, tree[1]!)
      if (r === undefined) return
      if (decodeURIComponent(tree[2]!) !== 'main' && decodeURIComponent(tree[2]!) !== commitOf(tree[1]!)) { fail(res, 404, 'RevisionNotFound'); return }
      const extra = o.announceExtraBytes ?? 0
      const all = r.files.map((f) => ({
        type: 'file', path: f.path, size: f.content.length + extra, oid: gitSha1(f.content),
        ...(f.git === true ? {} : { lfs: { oid: sha256(f.content), size: f.content.length + extra, pointerSize: 134 } })
      }))
      const start = Number(url.searchParams.get('cursor') ?? 0)
      const size = o.pageSize ?? 1000
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (start + size < all.length) headers.link = `<${url.pathname}?recursive=true&cursor=${start + size}>; rel="next"`
      res.writeHead(200, headers).end(JSON.stringify(all.slice(start, start + size)))
      return
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname)
    if (resolve !== null) {
      stats.resolveRequests++
      const repo = resolve[1]!
      const r = gate(req, res, repo)
      if (r === undefined) return
      const path = resolve[3]!.split('/').map(decodeURIComponent).join('/')
      const f = r.files.find((x) => x.path === path)
      if (f === undefined) { fail(res, 404, 'EntryNotFound'); return }
      const etag = f.git === true ? gitSha1(f.content) : sha256(f.content)
      res.writeHead(302, {
        location: `${cdnOrigin}/blob/${sha256(f.content)}?X-Amz-Signature=${Math.random().toString(16).slice(2)}`,
        'x-repo-commit': commitOf(repo),
        'x-linked-etag': `"${etag}"`,
        'x-linked-size': String(f.content.length + (o.announceExtraBytes ?? 0)),
        etag: `W/"${gitSha1(f.content)}"`
      }).end()
      return
    }
    fail(res, 404, 'RepoNotFound')
  })

  const cdn = createServer((req, res) => {
    if (req.headers.authorization !== undefined) stats.cdnRequestsWithAuth++
    const m = /^\/blob\/([0-9a-f]{64})$/.exec(new URL(req.url ?? '/', 'http://x').pathname)
    const blob = m === null ? undefined : blobs.get(m[1]!)
    if (blob === undefined) { res.writeHead(404).end(); return }
    const body = Buffer.from(blob.file.content)
    if (o.flipByteAt !== undefined && o.flipByteAt < body.length) body[o.flipByteAt] = body[o.flipByteAt]! ^ 0xff
    const range = req.headers.range
    if (range !== undefined) stats.ranges.push(range)
    let start = 0
    let end = body.length
    let status = 200
    const rm = range === undefined || o.ignoreRange === true ? null : /^bytes=(\d+)-(\d*)$/.exec(range)
    if (rm !== null) {
      start = Number(rm[1])
      if (start >= body.length) { stats.status416++; res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end(); return }
      end = rm[2] === '' ? body.length : Math.min(body.length, Number(rm[2]) + 1)
      status = 206
    }
    res.writeHead(status, {
      'content-length': String(end - start),
      'accept-ranges': 'bytes',
      ...(status === 206 ? { 'content-range': `bytes ${start}-${end - 1}/${body.length + (o.announceExtraBytes ?? 0)}` } : {})
    })
    let pos = start
    let closed = false
    res.on('close', () => { closed = true })
    const pump = (): void => {
      if (closed) return
      if (pos >= end) { res.end(); return }
      let n = Math.min(16 * 1024, end - pos)
      if (o.stallAfterBytes !== undefined && !stalled && stats.contentBytes + n >= o.stallAfterBytes) {
        stalled = true
        return // this response never sends another byte
      }
      if (o.dropAfterBytes !== undefined && !dropped && stats.contentBytes + n >= o.dropAfterBytes) {
        n = Math.max(0, o.dropAfterBytes - stats.contentBytes)
        dropped = true
        const last = body.subarray(pos, pos + n)
        count(n)
        res.write(last, () => { res.socket?.destroy() })
        return
      }
      const flushed = res.write(body.subarray(pos, pos + n))
      pos += n
      count(n)
      // respect backpressure: "served" then counts what the client takes, not what piles up in buffers
      const next = (): void => { setTimeout(pump, o.chunkDelayMs ?? 0) }
      if (flushed) next(); else res.once('drain', next)
    }
    const count = (n: number): void => {
      stats.contentBytes += n
      stats.bytesByPath.set(blob.file.path, (stats.bytesByPath.get(blob.file.path) ?? 0) + n)
      fake.onContent?.(stats.contentBytes)
    }
    pump()
  })

  const endpoint = await listen(hub)
  const cdnOrigin = await listen(cdn)
  const fake: FakeHub = {
    endpoint,
    cdnOrigin,
    stats,
    onContent: undefined,
    close: async () => {
      hub.closeAllConnections()
      cdn.closeAllConnections()
      await Promise.all([new Promise((resolve) => hub.close(resolve)), new Promise((resolve) => cdn.close(resolve))])
    }
  }
  return fake
}

/** `count` byte-level parts of `content` (just the bytes cut, as a pull test needs; not a loadable split GGUF). */
export function cutIntoParts (content: Uint8Array, count: number): Uint8Array[] {
  const size = Math.ceil(content.length / count)
  return Array.from({ length: count }, (_, i) => content.subarray(i * size, Math.min(content.length, (i + 1) * size)))
}

export { sha256 as sha256Hex }
