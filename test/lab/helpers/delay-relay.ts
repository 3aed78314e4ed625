/**
 * A TCP relay that holds every chunk DELAY_MS before forwarding it, in each direction (this kernel has
 * no netem). Run inside a namespace: `node --import tsx delay-relay.ts LISTEN_HOST LISTEN_PORT TARGET_HOST
 * TARGET_PORT DELAY_MS`. Prints "ready" on stdout once listening. Order is kept: equal timeouts fire in order.
 */
import { createServer, connect } from 'node:net'
import type { Socket } from 'node:net'

const [listenHost = '127.0.0.1', listenPort = '0', targetHost = '127.0.0.1', targetPort = '0', delay = '10'] = process.argv.slice(2)
const delayMs = Number(delay)

function pipeDelayed (from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => { setTimeout(() => { if (!to.destroyed) to.write(chunk) }, delayMs) })
  from.on('end', () => { setTimeout(() => { to.end() }, delayMs) })
  from.on('error', () => { to.destroy() })
  from.on('close', () => { setTimeout(() => { to.destroy() }, delayMs + 1) })
}

const server = createServer((client) => {
  client.setNoDelay(true)
  const upstream = connect({ host: targetHost, port: Number(targetPort), noDelay: true })
  pipeDelayed(client, upstream)
  pipeDelayed(upstream, client)
})
server.listen(Number(listenPort), listenHost, () => { process.stdout.write('ready\n') })
process.on('SIGTERM', () => { process.exit(0) })
