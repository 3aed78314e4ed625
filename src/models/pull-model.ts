import { statfs, stat, symlink, rm } from 'node:fs/promises'
import { basename } from 'node:path'
import { throwIfAborted } from '../shared/errors/exo-error.js'
import { DiskSpaceError, HubRepoNotFoundError, StoredModelConflictError } from '../shared/errors/pull-errors.js'
import { loadDoneRanges } from './download-state.js'
import { downloadFile } from './file-download.js'
import { modelIdOfFileName } from './gguf-split-name.js'
import { checksumOf } from './hash-file.js'
import { findInHfCache } from './hf-cache.js'
import { HubClient } from './hub-client.js'
import { formatModelRef, parseModelRef } from './model-ref.js'
import { ModelStore } from './model-store.js'
import { selectModelFiles, splitParts } from './quant-select.js'
import { rangeBytes, rangeHeader } from './range-plan.js'
import type { PullEvent } from '../shared/pull-events.js'
import type { Checksum } from './hash-file.js'
import type { HubConfig } from './hub-config.js'
import type { StoredModelMeta } from './model-store.js'
import type { HubFile } from './quant-select.js'

export interface PullOptions {
  /** `<data dir>/models` */
  modelsDir: string
  hub: HubConfig
  signal: AbortSignal
  onEvent?: (e: PullEvent) => void
  /** parallel range requests per large file. Default 4 */
  parallel?: number
  /** files below this are one request. Default 16 MiB */
  minPartBytes?: number
  /** a request that delivers no byte for this long is retried. Default 30 s */
  stallMs?: number
  fetch?: typeof fetch
}

export interface PullResult {
  id: string
  /** final paths, part 1 first */
  paths: string[]
  /** bytes received from the network in this call */
  receivedBytes: number
}

/** Bytes kept free beyond the download itself. */
const DISK_MARGIN_BYTES = 64 * 2 ** 20

interface PlannedFile { file: HubFile, name: string, checksum: Checksum | undefined }

/**
 * `exo-p2p pull`: resolves a Hub reference to its GGUF files (all parts of a split model), and puts each into the
 * store — already there (same size and checksum): kept; in the HF cache: linked in place; else downloaded
 * resumably and verified. Writes `.meta/<id>.json`.
 */
export async function pullModel (refText: string, options: PullOptions): Promise<PullResult> {
  const { signal } = options
  const emit = options.onEvent ?? (() => {})
  const ref = parseModelRef(refText)
  emit({ type: 'resolving', ref: formatModelRef(ref) })
  const endpoint = ref.kind === 'file' ? ref.endpoint : options.hub.endpoint
  const hub = new HubClient({ endpoint, token: ref.kind === 'file' && endpoint !== options.hub.endpoint ? undefined : options.hub.token, ...(options.fetch !== undefined ? { fetch: options.fetch } : {}) })
  const tree = await hub.listFiles(ref.repo, ref.revision, signal)
  let files: HubFile[]
  if (ref.kind === 'file') {
    const hit = tree.find((f) => f.path === ref.file)
    if (hit === undefined) throw new HubRepoNotFoundError(ref.repo, `file ${ref.file} at revision ${ref.revision}`)
    files = splitParts(tree, hit)
  } else {
    files = selectModelFiles(ref.repo, tree, ref.quant)
  }
  const id = modelIdOfFileName(files[0]!.path)
  const store = new ModelStore(options.modelsDir)
  await store.ensureDirs()

  // the commit pins every later request (a branch may move while a big model downloads)
  const first = await hub.resolveFile(ref.repo, ref.revision, files[0]!.path, signal)
  const commit = first.commit ?? (/^[0-9a-f]{40}$/.test(ref.revision) ? ref.revision : undefined)
  const planned: PlannedFile[] = files.map((file, i) => ({
    file, name: basename(file.path), checksum: checksumOf(file.sha256, i === 0 ? first.etag : undefined, file.oid)
  }))
  emit({ type: 'resolved', id, repo: ref.repo, revision: ref.revision, commit, files: planned.map((p) => ({ name: p.name, size: p.file.size, sha256: p.file.sha256 })) })

  const existing = await store.readMeta(id)
  const todo: PlannedFile[] = []
  const cacheHits = new Map<string, string>()
  for (const p of planned) {
    const st = await stat(store.finalPath(p.name)).catch(() => undefined)
    if (st !== undefined) {
      const known = existing?.files.find((f) => f.name === p.name)
      if (st.size !== p.file.size || (known?.sha256 !== undefined && p.file.sha256 !== undefined && known.sha256 !== p.file.sha256)) {
        throw new StoredModelConflictError(id, `${p.name}: ${st.size} bytes${known?.sha256 !== undefined ? `, sha256 ${known.sha256.slice(0, 12)}…` : ''}; the Hub's is ${p.file.size} bytes${p.file.sha256 !== undefined ? `, sha256 ${p.file.sha256.slice(0, 12)}…` : ''}`)
      }
      emit({ type: 'file', name: p.name, sha256: p.file.sha256, total: p.file.size, completed: p.file.size, source: 'store' })
      emit({ type: 'file-done', name: p.name, receivedBytes: 0 })
      continue
    }
    const cached = commit === undefined ? undefined : await findInHfCache(options.hub.cacheDir, ref.repo, commit, p.file.path, p.file.size, p.checksum)
    if (cached !== undefined) {
      await rm(store.finalPath(p.name), { force: true })
      await symlink(cached, store.finalPath(p.name))
      cacheHits.set(p.name, cached)
      emit({ type: 'file', name: p.name, sha256: p.file.sha256, total: p.file.size, completed: p.file.size, source: 'hf-cache' })
      emit({ type: 'file-done', name: p.name, receivedBytes: 0 })
      continue
    }
    todo.push(p)
  }

  await checkDiskSpace(store, todo)
  let receivedBytes = 0
  for (const p of todo) {
    throwIfAborted(signal)
    const partialPath = store.partialPath(p.name)
    const checksumKey = p.checksum === undefined ? '' : `${p.checksum.kind}:${p.checksum.hex}`
    const resumed = rangeBytes(await loadDoneRanges(`${partialPath}.json`, partialPath, p.file.size, checksumKey))
    emit({ type: 'file', name: p.name, sha256: p.file.sha256, total: p.file.size, completed: resumed, source: 'download' })
    let resolved = p === planned[0] ? first : undefined
    const rev = commit ?? ref.revision
    receivedBytes += await downloadFile({ name: p.name, size: p.file.size, checksum: p.checksum, finalPath: store.finalPath(p.name), partialPath }, async (range, s) => {
      // a fresh resolution for every request after the first: CDN URLs are signed and expire
      const r = resolved ?? await hub.resolveFile(ref.repo, rev, p.file.path, s)
      resolved = undefined
      return await (options.fetch ?? fetch)(r.url, { headers: { range: rangeHeader(range), ...(r.hubOrigin ? hub.authHeaders(r.url) : {}) }, signal: s, redirect: 'follow' })
    }, {
      signal,
      ...(options.parallel !== undefined ? { parallel: options.parallel } : {}),
      ...(options.minPartBytes !== undefined ? { minPartBytes: options.minPartBytes } : {}),
      ...(options.stallMs !== undefined ? { stallMs: options.stallMs } : {}),
      onProgress: (completed, total) => { emit({ type: 'progress', name: p.name, sha256: p.file.sha256, completed, total }) },
      onVerify: () => { emit({ type: 'verifying', name: p.name }) }
    }).then((n) => { emit({ type: 'file-done', name: p.name, receivedBytes: n }); return n })
  }

  const meta: StoredModelMeta = {
    id,
    repo: ref.repo,
    revision: ref.revision,
    commit,
    files: planned.map((p) => ({ name: p.name, size: p.file.size, sha256: p.checksum?.kind === 'sha256' ? p.checksum.hex : undefined, ...(cacheHits.has(p.name) ? { hfCachePath: cacheHits.get(p.name)! } : {}) })),
    pulledAt: new Date().toISOString()
  }
  await store.writeMeta(meta)
  const paths = planned.map((p) => store.finalPath(p.name))
  emit({ type: 'done', id, paths })
  return { id, paths, receivedBytes }
}

/** The store's file system must have room for every byte still missing (partials are full-size sparse files). */
async function checkDiskSpace (store: ModelStore, todo: PlannedFile[]): Promise<void> {
  if (todo.length === 0) return
  let needed = 0
  for (const p of todo) {
    const partialPath = store.partialPath(p.name)
    const checksumKey = p.checksum === undefined ? '' : `${p.checksum.kind}:${p.checksum.hex}`
    needed += p.file.size - rangeBytes(await loadDoneRanges(`${partialPath}.json`, partialPath, p.file.size, checksumKey))
  }
  const fs = await statfs(store.partialDir)
  const free = Number(fs.bavail) * Number(fs.bsize)
  if (needed + DISK_MARGIN_BYTES > free) throw new DiskSpaceError(store.dir, needed, free)
}
