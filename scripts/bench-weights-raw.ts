import { createConnection, createServer } from 'node:net'
import { closeSync, openSync, rmSync, writeSync } from 'node:fs'
import { open } from 'node:fs/promises'

/**
 * The raw TCP side of scripts/bench-weights.ts: a plain TCP server of a file's byte ranges
 * ("offset length\n" → the bytes) in the holder process, the copy of ranges into a file, and the
 * holder's CPU seconds ("cpu\n" → JSON padded to 128 bytes).
 */

/** Serves `path`'s ranges on 127.0.0.1; resolves with the port. */
export async function serveFileRanges (path: string): Promise<number> {
  const fh = await open(path, 'r')
  const tcp = createServer((sock) => {
    let buf = ''
    sock.on('data', (d) => {
      buf += d.toString()
      void (async () => {
        for (let i; (i = buf.indexOf('\n')) >= 0;) {
          const line = buf.slice(0, i)
          buf = buf.slice(i + 1)
          if (line === 'cpu') { const u = process.cpuUsage(); sock.write(JSON.stringify({ s: (u.user + u.system) / 1e6 }).padEnd(128)); continue }
          const [off, len] = line.split(' ').map(Number)
          const b = Buffer.allocUnsafe(len!)
          await fh.read(b, 0, len!, off!)
          if (!sock.write(b)) await new Promise((resolve) => sock.once('drain', resolve))
        }
      })()
    })
  })
  await new Promise<void>((resolve) => { tcp.listen(0, '127.0.0.1', resolve) })
  return (tcp.address() as { port: number }).port
}

/** Copies `spans` of the served file into `out` (full size, at their offsets); bytes and seconds. */
export async function copyRanges (port: number, spans: Array<{ start: number, end: number }>, out: string): Promise<{ bytes: number, s: number }> {
  const fd = openSync(out, 'w')
  const t0 = performance.now()
  const sock = createConnection(port, '127.0.0.1')
  let total = 0
  for (const { start, end } of spans) {
    sock.write(`${start} ${end - start}\n`)
    let got = 0
    while (got < end - start) {
      const data = await new Promise<Buffer>((resolve) => { sock.once('data', resolve) })
      const take = data.subarray(0, end - start - got)
      writeSync(fd, take, 0, take.length, start + got)
      got += take.length
      if (take.length < data.length) sock.unshift(data.subarray(take.length))
    }
    total += got
  }
  sock.destroy()
  closeSync(fd)
  const s = (performance.now() - t0) / 1000
  rmSync(out, { force: true })
  return { bytes: total, s }
}

/** CPU seconds the serving process has used so far. */
export async function processCpu (port: number): Promise<number> {
  const sock = createConnection(port, '127.0.0.1')
  sock.write('cpu\n')
  let got = ''
  for await (const d of sock) { got += (d as Buffer).toString(); if (got.length >= 128) break }
  sock.destroy()
  return (JSON.parse(got) as { s: number }).s
}
