import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadNodeConfig } from '../../../src/config/load-node-config.js'
import { formatClusterKey, parseClusterKey, writeNewClusterKeyFile } from '../../../src/config/cluster-key-file.js'
import { ConfigError, ClusterKeyError } from '../../../src/shared/errors/config-errors.js'

describe('loadNodeConfig', () => {
  let dir = ''
  before(() => { dir = mkdtempSync(join(tmpdir(), 'exo-config-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('uses documented defaults', () => {
    const c = loadNodeConfig({}, { HOME: dir }, dir)
    assert.equal(c.httpPort, 52415)
    assert.equal(c.p2pPort, 4001)
    assert.equal(c.host, '0.0.0.0')
    assert.equal(c.mdns, true)
    assert.deepEqual(c.peers, [])
    assert.equal(c.clusterKeyHex, undefined)
    assert.ok(c.memoryBudgetBytes > 0 && c.memoryBudgetBytes % 2 ** 20 === 0)
    assert.ok(Object.isFrozen(c))
  })

  it('--gpu / --gpu-device / --gpu-layers: defaults auto, 0, auto; flags > env; bad values are ConfigErrors', () => {
    const d = loadNodeConfig({}, { HOME: dir }, dir)
    assert.deepEqual([d.gpu, d.gpuDevice, d.gpuLayers], ['auto', 0, 'auto'])
    const e = loadNodeConfig({}, { HOME: dir, EXO_P2P_GPU: 'vulkan', EXO_P2P_GPU_DEVICE: '1', EXO_P2P_GPU_LAYERS: '12' }, dir)
    assert.deepEqual([e.gpu, e.gpuDevice, e.gpuLayers], ['vulkan', 1, 12])
    const f = loadNodeConfig({ gpu: 'cpu', gpuLayers: 'auto' }, { HOME: dir, EXO_P2P_GPU: 'vulkan', EXO_P2P_GPU_LAYERS: '12' }, dir)
    assert.deepEqual([f.gpu, f.gpuLayers], ['cpu', 'auto'])
    assert.throws(() => loadNodeConfig({ gpu: 'opencl' }, { HOME: dir }, dir), (err: unknown) => err instanceof ConfigError && /gpu/.test(err.message))
    assert.throws(() => loadNodeConfig({ gpuLayers: 'many' }, { HOME: dir }, dir), ConfigError)
    assert.throws(() => loadNodeConfig({ gpuDevice: '-1' }, { HOME: dir }, dir), ConfigError)
  })

  it('flags > env > config file > defaults', () => {
    const dataDir = join(dir, 'd1')
    const file = join(dir, 'c.json')
    writeFileSync(file, JSON.stringify({ name: 'from-file', httpPort: 1111, p2pPort: 2222, mdns: false, peers: ['/ip4/1.2.3.4/tcp/1'], memoryBudgetMb: 512 }))
    const env = { EXO_P2P_CONFIG: file, EXO_P2P_HTTP_PORT: '3333', EXO_P2P_NAME: 'from-env', EXO_P2P_MDNS: 'true' }
    const c = loadNodeConfig({ name: 'from-flag', dataDir }, env, dir)
    assert.equal(c.name, 'from-flag')
    assert.equal(c.httpPort, 3333)
    assert.equal(c.p2pPort, 2222)
    assert.equal(c.mdns, true)
    assert.deepEqual(c.peers, ['/ip4/1.2.3.4/tcp/1'])
    assert.equal(c.memoryBudgetBytes, 512 * 2 ** 20)
    assert.equal(c.configFile, file)
    assert.equal(c.dataDir, dataDir)
    const flagsWin = loadNodeConfig({ peer: ['/ip4/5.6.7.8/tcp/2'], mdns: false, httpPort: '0' }, env, dir)
    assert.deepEqual(flagsWin.peers, ['/ip4/5.6.7.8/tcp/2'])
    assert.equal(flagsWin.mdns, false)
    assert.equal(flagsWin.httpPort, 0)
  })

  it('reads <dataDir>/config.json when no file is named', () => {
    const dataDir = join(dir, 'd2')
    rmSync(dataDir, { recursive: true, force: true })
    mkdirSync(dataDir, { recursive: true })
    writeFileSync(join(dataDir, 'config.json'), JSON.stringify({ name: 'dd' }))
    assert.equal(loadNodeConfig({}, { EXO_P2P_DATA_DIR: dataDir }, dir).name, 'dd')
  })

  it('rejects invalid values naming the source', () => {
    assert.throws(() => loadNodeConfig({ httpPort: '70000' }, {}, dir), (e: unknown) => e instanceof ConfigError && /flags: httpPort/.test(e.message))
    assert.throws(() => loadNodeConfig({}, { EXO_P2P_MDNS: 'maybe' }, dir), ConfigError)
    const bad = join(dir, 'bad.json')
    writeFileSync(bad, JSON.stringify({ unknownKey: 1 }))
    assert.throws(() => loadNodeConfig({ config: bad }, {}, dir), (e: unknown) => e instanceof ConfigError && e.message.includes('bad.json'))
    assert.throws(() => loadNodeConfig({ config: join(dir, 'missing.json') }, {}, dir), ConfigError)
  })

  it('reads the cluster key file; keygen writes 0600 and never overwrites', () => {
    const key = join(dir, 'k')
    const old = process.umask(0)
    try { writeNewClusterKeyFile(key) } finally { process.umask(old) }
    assert.equal(statSync(key).mode & 0o777, 0o600, 'even under umask 000')
    assert.throws(() => { writeNewClusterKeyFile(key) }, ClusterKeyError)
    const c = loadNodeConfig({ clusterKey: key }, {}, dir)
    assert.match(c.clusterKeyHex ?? '', /^[0-9a-f]{64}$/)
    assert.equal(c.clusterKeyHex, readFileSync(key, 'utf8').split('\n')[1])
    assert.throws(() => loadNodeConfig({ clusterKey: join(dir, 'nokey') }, {}, dir), ClusterKeyError)
    assert.throws(() => parseClusterKey('exo-p2p-cluster-key/v1\nabcd\n', 'f'), ClusterKeyError)
    assert.throws(() => parseClusterKey('hello\n' + 'a'.repeat(64), 'f'), ClusterKeyError)
    assert.equal(parseClusterKey(formatClusterKey(new Uint8Array(32).fill(255)), 'f'), 'f'.repeat(64))
  })
})

