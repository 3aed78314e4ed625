import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Provenance, sha256 } from '../../../src/protocols/weights/index.js'
import type { WeightsManifest } from '../../../src/protocols/weights/index.js'
import { PartialCopy, partialPaths } from '../../../src/node/peer-fetch/partial-copy.js'

/** A 3-chunk file of 64 KiB chunks and its manifest. */
const CHUNK = 64 * 1024
const file = Buffer.alloc(2 * CHUNK + 100, 7)
const manifest: WeightsManifest = {
  fileBytes: file.byteLength, headerBytes: 10, chunkBytes: CHUNK, sha256: sha256(file), provenance: Provenance.Local,
  chunkSha256: Buffer.concat([0, 1, 2].map((i) => sha256(file.subarray(i * CHUNK, (i + 1) * CHUNK))))
}

test('a partial copy resumes with its recorded chunks, under a new name too; a state file whose data file is gone vouches for nothing', async () => {
  const dir = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'partial-copy-'))
  try {
    const a = await PartialCopy.open(dir, 'm', manifest)
    await a.write(0, file.subarray(0, CHUNK))
    await a.write(2, [file.subarray(2 * CHUNK, 2 * CHUNK + 50), file.subarray(2 * CHUNK + 50)])
    await a.moveTo('m-00001-of-00002')
    await a.close()
    assert.equal(existsSync(partialPaths(dir, 'm').data), false)
    const b = await PartialCopy.open(dir, 'm-00001-of-00002', manifest)
    assert.deepEqual([b.has(0), b.has(1), b.has(2)], [true, false, true])
    await b.close()
    rmSync(partialPaths(dir, 'm-00001-of-00002').data)
    const c = await PartialCopy.open(dir, 'm-00001-of-00002', manifest)
    assert.equal(c.verifiedChunks, 0, 'the chunks of a deleted data file are not taken as verified')
    await c.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
