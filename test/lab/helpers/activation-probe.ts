/**
 * A stale first stage, for the partition lab: dials a node (run it inside a namespace) and opens one
 * activation hop of plan PLAN_ID to stage TO_STAGE, as a first stage still on a plan from before a
 * partition would. Prints one JSON line: the ERROR the stage answered (`{ code, message }`) or
 * `{ accepted: true }` when no refusal came within 5 s.
 * `node --import tsx activation-probe.ts MULTIADDR PLAN_ID TO_STAGE`
 */
import { startNode } from '../../helpers/libp2p-pair.js'
import { multiaddr } from '@multiformats/multiaddr'
import { ACTIVATIONS_PROTOCOL, ActivationChannel } from '../../../src/protocols/activations/index.js'
import { ActivationStageError } from '../../../src/shared/errors/protocol-errors.js'
import { activationErrorName } from '../../../src/shared/errors/protocol-errors.js'
import { asPlanId, asRequestId } from '../../../src/shared/ids.js'

const [addr = '', planId = '', toStage = '1'] = process.argv.slice(2)
const node = await startNode()
let out: unknown
try {
  const signal = AbortSignal.timeout(5000)
  const stream = await node.dialProtocol(multiaddr(addr), ACTIVATIONS_PROTOCOL, { signal })
  const channel = await ActivationChannel.dial(stream, { type: 'open', requestId: asRequestId(`probe-${Date.now()}`), planId: asPlanId(planId), toStage: Number(toStage), contextSize: 64 }, { signal })
  try {
    await channel.next({ signal })
    out = { accepted: true }
  } catch (err) {
    out = err instanceof ActivationStageError ? { code: activationErrorName(err.wireCode), message: err.message } : { accepted: true, error: (err as Error).message }
  }
} finally {
  await Promise.race([node.stop(), new Promise((resolve) => setTimeout(resolve, 1000))])
}
// libp2p may keep timers alive after stop: exit once the line is out
process.stdout.write(`${JSON.stringify(out)}\n`, () => { process.exit(0) })
