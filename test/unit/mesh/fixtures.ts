import type { Announcement } from '../../../src/mesh/membership/announcement.js'

/** A valid announcement for unit tests; override what the test is about. */
export function makeAnnouncement (peerId: string, over: Partial<Announcement> = {}): Announcement {
  return {
    v: 1,
    kind: 'announce',
    peerId,
    epoch: 1000,
    seq: 0,
    name: `node-${peerId.slice(-4)}`,
    addresses: [`/ip4/127.0.0.1/tcp/4001/p2p/${peerId}`],
    httpUrl: 'http://127.0.0.1:52415',
    capabilities: { memoryBudgetBytes: 4 * 2 ** 30, freeMemoryBytes: 2 * 2 ** 30, cpuCores: 2, backend: 'cpu', computeMsPerUnit: 0 },
    models: [],
    shards: [],
    queueLength: 0,
    links: [],
    ...over
  }
}
