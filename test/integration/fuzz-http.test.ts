// scripts/fuzz-http.ts against a real node process: a few hundred seeded hostile bodies on every POST route,
// no 5xx, every error JSON, no dropped connection, the node alive at the end. The script's default is 10,000.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT, startMeshNode, stopProcess } from './helpers/mesh-node-process.js'
import type { MeshNodeProcess } from './helpers/mesh-node-process.js'

const KEY = 'fuzz-key-0123'
const dir = mkdtempSync(join(tmpdir(), 'exo-fuzz-http-'))
let node: MeshNodeProcess

before(async () => {
  node = await startMeshNode({ name: 'fuzz', dataDir: join(dir, 'n'), extraArgs: ['--api-key', KEY] }, 90_000)
})
after(async () => {
  await stopProcess(node, 'SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

test('250 seeded hostile bodies: no 5xx, errors are JSON, no connection dropped, the node lives', { timeout: 240_000 }, async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/fuzz-http.ts', '--url', node.httpUrl, '--count', '250', '--seed', '11', '--api-key', KEY, '--concurrency', '4'],
    { cwd: REPO_ROOT, timeout: 220_000 }).catch((err: { stdout?: string, message: string }) => { throw new Error(`fuzz-http failed:\n${err.stdout ?? err.message}`) })
  t.diagnostic(stdout.trim())
  assert.match(stdout, /failures 0; node alive/)
  assert.match(stdout, /400×\d+/, 'hostile bodies were refused')
})
