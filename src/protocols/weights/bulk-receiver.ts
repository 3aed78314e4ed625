import { Worker } from 'node:worker_threads'
import { AbortedError } from '../../shared/errors/exo-error.js'
import { BulkPathError, ChunkVerificationError, ProtocolDecodeError, ProtocolTimeoutError, StreamEndedError, WeightsRequestError } from '../../shared/errors/protocol-errors.js'
import type { WeightsManifest } from './codec.js'
import type { ChunkRun } from './manifest.js'

/**
 * The fetcher's side of the bulk connection in a worker thread (protocols/weights.md "Bulk path
 * (1.1.0)"): AES-GCM, SHA-256 and file writes of the chunks cost the node's event loop nothing, so a
 * fetch neither delays the activations a node forwards nor waits for them. Workers are pooled (idle
 * ones are unref'd: they keep no process alive).
 */

/** A bulk transfer handed to the worker. */
export interface BulkWorkerStart {
  type: 'start'
  id: number
  host: string
  port: number
  ticketId: Uint8Array
  secret: Uint8Array
  /** the partial copy's file: each verified chunk is written at its offset */
  path: string
  modelId: string
  manifest: WeightsManifest
  run: ChunkRun
}
export type BulkWorkerRequest = BulkWorkerStart | { type: 'ack', id: number, index: number } | { type: 'abort', id: number }
export type BulkWorkerReply = { type: 'chunk', id: number, index: number } | { type: 'done', id: number } |
{ type: 'error', id: number, name: string, message: string, reason?: string, wireCode?: number, chunkIndex?: number }

const MAX_IDLE_WORKERS = 4
const idle: Worker[] = []
let nextId = 1

function workerUrl (): { url: string, ts: boolean } {
  const ts = import.meta.url.endsWith('.ts')
  return { url: new URL(`./bulk-receive-worker.${ts ? 'ts' : 'js'}`, import.meta.url).href, ts }
}

/**
 * A worker running bulk-receive-worker; under tsx (sources run as .ts) it registers tsx first. It always has an
 * 'error' listener (a Worker's 'error' without one throws in the node's thread, even while the worker idles in the
 * pool); a worker that failed or exited leaves the pool.
 */
function spawnWorker (): Worker {
  const { url, ts } = workerUrl()
  const load = ts
    ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(url)}) })`
    : `import(${JSON.stringify(url)})`
  const w = new Worker(`${load}.catch((err) => { require('node:worker_threads').parentPort.postMessage({ type: 'error', id: 0, name: 'BulkPathError', reason: 'worker', message: 'bulk worker failed to load: ' + err.message }) })`, { eval: true, execArgv: [] })
  const leave = (): void => { const i = idle.indexOf(w); if (i >= 0) idle.splice(i, 1) }
  w.on('error', leave)
  w.on('exit', leave)
  return w
}

/** The worker's error as the class the fetcher branches on (chunk-fetcher.ts). */
function errorOf (r: Extract<BulkWorkerReply, { type: 'error' }>): Error {
  switch (r.name) {
    case 'BulkPathError': return new BulkPathError((r.reason ?? 'record') as BulkPathError['reason'], r.message)
    case 'ChunkVerificationError': return new ChunkVerificationError(r.chunkIndex ?? -1, r.message)
    case 'ProtocolDecodeError': case 'FrameTooLargeError': return new ProtocolDecodeError(r.message)
    case 'WeightsRequestError': return new WeightsRequestError(r.wireCode ?? 6, r.message.replace(/^remote holder: /, ''), true)
    case 'ProtocolTimeoutError': return new ProtocolTimeoutError(r.message)
    case 'AbortedError': return new AbortedError(r.message)
    default: return new StreamEndedError(`bulk transfer: ${r.message}`)
  }
}

/**
 * Receives the bulk transfer of a ticket in a worker: each chunk of `run` verified against the manifest
 * and written into `path`, then `onWritten(index)` (awaited: the worker waits). Rejects with the errors
 * of requestChunks (`BulkPathError` for the bulk path itself).
 */
export async function receiveBulkInWorker (job: Omit<BulkWorkerStart, 'type' | 'id'>, onWritten: (index: number) => Promise<void>, signal: AbortSignal): Promise<void> {
  const worker = idle.pop() ?? spawnWorker()
  worker.ref()
  const id = nextId++
  let failed = false
  try {
    await new Promise<void>((resolve, reject) => {
      const onMessage = (r: BulkWorkerReply): void => {
        if (r.id !== id && r.id !== 0) return
        if (r.id === 0) failed = true
        if (r.type === 'chunk') {
          onWritten(r.index).then(() => { worker.postMessage({ type: 'ack', id, index: r.index } satisfies BulkWorkerRequest) }, (err: Error) => { worker.postMessage({ type: 'abort', id } satisfies BulkWorkerRequest); finish(err) })
        } else if (r.type === 'done') finish()
        else finish(errorOf(r))
      }
      // a worker that cannot load or crashed: the libp2p stream instead (protocols/weights.md "Fallback")
      const onError = (err: Error): void => { failed = true; finish(new BulkPathError('worker', `bulk worker: ${err.message}`)) }
      const onAbort = (): void => { worker.postMessage({ type: 'abort', id } satisfies BulkWorkerRequest); finish(new AbortedError('bulk transfer aborted', { cause: signal.reason })) }
      let settled = false
      const finish = (err?: Error): void => {
        if (settled) return
        settled = true
        worker.off('message', onMessage)
        worker.off('error', onError)
        signal.removeEventListener('abort', onAbort)
        if (err === undefined) resolve(); else reject(err)
      }
      worker.on('message', onMessage)
      worker.once('error', onError)
      if (signal.aborted) { onAbort(); return }
      signal.addEventListener('abort', onAbort, { once: true })
      worker.postMessage({ type: 'start', id, ...job } satisfies BulkWorkerRequest)
    })
  } finally {
    if (failed || idle.length >= MAX_IDLE_WORKERS) void worker.terminate()
    else { worker.unref(); idle.push(worker) }
  }
}
