// The peer identity is a secret: written 0600 in a 0700 data dir, read back as the same peer id.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PEER_KEY_FILE, loadOrCreatePeerKey } from '../../../src/mesh/peer-identity.js'
import { looseSecretFileMode } from '../../../src/config/cluster-key-file.js'
import { PeerIdentityError } from '../../../src/shared/errors/mesh-errors.js'

test('peer-key is created 0600 (even under umask 000) in a 0700 data dir and keeps the peer id', async () => {
  const root = mkdtempSync(join(tmpdir(), 'exo-peer-key-'))
  const old = process.umask(0)
  try {
    const dataDir = join(root, 'data')
    const key = await loadOrCreatePeerKey(dataDir)
    assert.equal(statSync(join(dataDir, PEER_KEY_FILE)).mode & 0o777, 0o600)
    assert.equal(statSync(dataDir).mode & 0o777, 0o700)
    assert.equal(looseSecretFileMode(join(dataDir, PEER_KEY_FILE)), undefined)
    const again = await loadOrCreatePeerKey(dataDir)
    assert.equal(peerIdFromPrivateKey(again).toString(), peerIdFromPrivateKey(key).toString())
    writeFileSync(join(root, PEER_KEY_FILE), 'not a key')
    await assert.rejects(loadOrCreatePeerKey(root), PeerIdentityError)
    assert.equal(looseSecretFileMode(join(root, 'missing')), undefined, 'a missing file is not loose')
  } finally {
    process.umask(old)
    rmSync(root, { recursive: true, force: true })
  }
})

test('looseSecretFileMode flags group/other bits only', () => {
  const root = mkdtempSync(join(tmpdir(), 'exo-loose-'))
  try {
    const f = join(root, 'k')
    writeFileSync(f, 'x')
    for (const [mode, loose] of [[0o600, false], [0o400, false], [0o640, true], [0o644, true], [0o602, true], [0o700, false]] as const) {
      chmodSync(f, mode)
      assert.equal(looseSecretFileMode(f), loose ? mode : undefined, mode.toString(8))
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})
