import { open } from 'node:fs/promises'
import { parentPort } from 'node:worker_threads'
import { bulkKeys, helloBytes } from './bulk-crypto.js'
import { BulkRecordReader, connectBulk } from './bulk-records.js'
import { DATA_IDLE_TIMEOUT_MS, receiveChunks } from './client.js'
import type { BulkWorkerReply, BulkWorkerRequest } from './bulk-receiver.js'
import { chunkSpan } from './manifest.js'

/**
 * Worker thread of the fetcher's bulk path (src/protocols/weights/bulk-receiver.ts): connects to the
 * holder, presents the ticket, opens every record, verifies each chunk against the manifest and writes
 * it into the partial copy's file — off the node's event loop. After each chunk it waits for the main
 * thread's ack (pacing and backpressure stay the main thread's).
 */
const port = parentPort!
const jobs = new Map<number, { abort: AbortController, acks: Map<number, () => void> }>()

port.on('message', (m: BulkWorkerRequest) => {
  if (m.type === 'abort') { jobs.get(m.id)?.abort.abort(new Error('aborted by the fetcher')); return }
  if (m.type === 'ack') { const j = jobs.get(m.id); const a = j?.acks.get(m.index); j?.acks.delete(m.index); a?.(); return }
  const abort = new AbortController()
  const job = { abort, acks: new Map<number, () => void>() }
  jobs.set(m.id, job)
  // an abort releases a chunk waiting for its ack; the next read throws
  abort.signal.addEventListener('abort', () => { for (const a of job.acks.values()) a(); job.acks.clear() }, { once: true })
  const reply = (r: BulkWorkerReply): void => { port.postMessage(r) }
  void (async () => {
    const keys = bulkKeys(m.ticketId, m.secret)
    // the file first: a copy that cannot be opened leaves no connection behind
    const fh = await open(m.path, 'r+')
    let sock: Awaited<ReturnType<typeof connectBulk>> | undefined
    try {
      sock = await connectBulk(m.host, m.port, abort.signal)
      const records = new BulkRecordReader(sock, keys)
      sock.write(helloBytes(keys))
      await receiveChunks(async () => await records.next(abort.signal, DATA_IDLE_TIMEOUT_MS), m.modelId, m.manifest, m.run, async (index, pieces) => {
        let pos = chunkSpan(m.manifest, index).start
        for (const p of pieces) {
          for (let done = 0; done < p.byteLength;) done += (await fh.write(p, done, p.byteLength - done, pos + done)).bytesWritten
          pos += p.byteLength
        }
        await new Promise<void>((resolve) => { job.acks.set(index, resolve); reply({ type: 'chunk', id: m.id, index }) })
      })
    } finally {
      sock?.destroy()
      await fh.close()
    }
  })().then(() => { reply({ type: 'done', id: m.id }) }, (err: Error & { reason?: string, wireCode?: number, chunkIndex?: number }) => {
    reply({ type: 'error', id: m.id, name: err.name, message: err.message, ...(err.reason !== undefined ? { reason: err.reason } : {}), ...(err.wireCode !== undefined ? { wireCode: err.wireCode } : {}), ...(err.chunkIndex !== undefined ? { chunkIndex: err.chunkIndex } : {}) })
  }).finally(() => { jobs.delete(m.id) })
})
