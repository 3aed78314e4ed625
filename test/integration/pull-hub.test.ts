import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { BUNDLED_MODEL_PATH } from '../../src/node/model-registry.js'
import { ModelStore } from '../../src/models/model-store.js'
import { pullModel } from '../../src/models/pull-model.js'
import { AbortedError } from '../../src/shared/errors/exo-error.js'
import { ChecksumMismatchError, DiskSpaceError, DownloadInProgressError, DownloadSizeError, HubAuthError, HubRepoNotFoundError, QuantNotFoundError } from '../../src/shared/errors/pull-errors.js'
import { cutIntoParts, sha256Hex, startFakeHub } from '../helpers/fake-hub.js'
import type { FakeHub, FakeHubOptions } from '../helpers/fake-hub.js'
import type { PullOptions } from '../../src/models/pull-model.js'
import type { PullEvent } from '../../src/shared/pull-events.js'

/** Pulls against a local Hub on two origins (tests/helpers/fake-hub.ts): real HTTP, real files, bytes counted by the server. */
const root = mkdtempSync(join(tmpdir(), 'exo-pull-'))
after(() => { rmSync(root, { recursive: true, force: true }) })
const stories = readFileSync(BUNDLED_MODEL_PATH)
const split = cutIntoParts(stories, 3)
const repos: FakeHubOptions['repos'] = {
  'ggml-org/stories260k-GGUF': {
    files: [
      { path: 'README.md', content: Buffer.from('# stories\n'), git: true },
      { path: 'mmproj-stories260k-f16.gguf', content: Buffer.from('not a model') },
      { path: 'stories260k-f32.gguf', content: stories }
    ]
  },
  'org/split-GGUF': {
    files: [
      { path: 'model-Q4_K_M.gguf', content: Buffer.from('q4 model bytes') },
      ...split.map((content, i) => ({ path: `Q8_0/model-Q8_0-0000${i + 1}-of-00003.gguf`, content }))
    ]
  },
  'org/gated-GGUF': { gated: true, files: [{ path: 'tiny-Q8_0.gguf', content: stories.subarray(0, 4096) }] }
}
let n = 0

async function withHub (o: Partial<FakeHubOptions>, fn: (hub: FakeHub, opts: (extra?: Partial<PullOptions>) => PullOptions, modelsDir: string) => Promise<void>): Promise<void> {
  // the options object itself (not a copy): a test may change it between pulls
  const hub = await startFakeHub(Object.assign(o, { repos: o.repos ?? repos, pageSize: o.pageSize ?? 2, token: o.token ?? 'hf_secret' }))
  const dir = join(root, `case-${n++}`)
  const modelsDir = join(dir, 'models')
  const opts = (extra: Partial<PullOptions> = {}): PullOptions => ({
    modelsDir, hub: { endpoint: hub.endpoint, token: undefined, cacheDir: join(dir, 'hf-cache') }, signal: AbortSignal.timeout(30_000), ...extra
  })
  try { await fn(hub, opts, modelsDir) } finally { await hub.close() }
}

test('pull org/repo picks the model GGUF (not the mmproj), across tree pages, verified; the token reaches the Hub only', async () => {
  await withHub({}, async (hub, opts, modelsDir) => {
    const events: PullEvent[] = []
    const o = opts({ onEvent: (e) => events.push(e) })
    const r = await pullModel('ggml-org/stories260k-GGUF', { ...o, hub: { ...o.hub, token: 'hf_secret' } })
    assert.equal(r.id, 'stories260k-f32')
    assert.deepEqual(readFileSync(join(modelsDir, 'stories260k-f32.gguf')), stories)
    assert.equal(hub.stats.contentBytes, stories.length, 'each byte served once')
    assert.equal(hub.stats.cdnRequestsWithAuth, 0, 'no token to the CDN origin')
    assert.ok(hub.stats.hubAuth.length > 0 && hub.stats.hubAuth.every((a) => a === 'Bearer hf_secret'))
    assert.ok(hub.stats.treeRequests >= 2, 'followed Link rel=next')
    assert.deepEqual(events.map((e) => e.type).filter((t, i, a) => t !== a[i - 1]), ['resolving', 'resolved', 'file', 'progress', 'verifying', 'file-done', 'done'])
    assert.deepEqual(readdirSync(join(modelsDir, '.partial')), [], 'no partial left')
    const meta = await new ModelStore(modelsDir).readMeta('stories260k-f32')
    assert.equal(meta?.files[0]?.sha256, sha256Hex(stories))
    // a second pull finds it in the store and downloads nothing
    await pullModel('hf.co/ggml-org/stories260k-GGUF', opts())
    assert.equal(hub.stats.contentBytes, stories.length)
  })
})

test('a 3-part split model: all parts by quant, several ranges in parallel; the store lists one model', async () => {
  await withHub({}, async (hub, opts, modelsDir) => {
    const r = await pullModel('org/split-GGUF:q8_0', opts({ parallel: 3, minPartBytes: 64 * 1024 }))
    assert.equal(r.id, 'model-Q8_0')
    split.forEach((part, i) => { assert.deepEqual(readFileSync(join(modelsDir, `model-Q8_0-0000${i + 1}-of-00003.gguf`)), Buffer.from(part)) })
    assert.equal(hub.stats.contentBytes, stories.length)
    assert.ok(hub.stats.ranges.length >= 6, `parallel pieces (${hub.stats.ranges.length} ranges)`)
    const listed = await new ModelStore(modelsDir).list()
    assert.deepEqual(listed.map((m) => [m.id, m.paths.length, m.sizeBytes]), [['model-Q8_0', 3, stories.length]])
  })
})

test('a pull aborted mid-file resumes from its partial: bytes served ≈ the file once', async () => {
  await withHub({ chunkDelayMs: 1 }, async (hub, opts, modelsDir) => {
    const ctl = new AbortController()
    hub.onContent = (total) => { if (total >= stories.length / 2) ctl.abort() }
    await assert.rejects(pullModel('ggml-org/stories260k-GGUF', opts({ signal: ctl.signal })), AbortedError)
    hub.onContent = undefined
    assert.equal(existsSync(join(modelsDir, 'stories260k-f32.gguf')), false, 'nothing under the final name')
    assert.ok(existsSync(join(modelsDir, '.partial', 'stories260k-f32.gguf.partial.json')))
    const first = hub.stats.contentBytes
    const r = await pullModel('ggml-org/stories260k-GGUF', opts())
    assert.deepEqual(readFileSync(join(modelsDir, 'stories260k-f32.gguf')), stories)
    assert.ok(r.receivedBytes < stories.length * 0.6, `resumed: received ${r.receivedBytes} of ${stories.length}`)
    assert.ok(hub.stats.contentBytes <= stories.length * 1.1, `served ${hub.stats.contentBytes} (first run ${first}) for a ${stories.length}-byte file`)
    assert.match(hub.stats.ranges.at(-1)!, /^bytes=[1-9]\d*-/)
  })
})

test('two pulls of one model at once: the second is refused while the first downloads (no shared partial)', async () => {
  await withHub({ chunkDelayMs: 2 }, async (_hub, opts, modelsDir) => {
    let downloading!: () => void
    const started = new Promise<void>((resolve) => { downloading = resolve })
    const first = pullModel('ggml-org/stories260k-GGUF', opts({ onEvent: (e) => { if (e.type === 'progress') downloading() } }))
    await started
    await assert.rejects(pullModel('ggml-org/stories260k-GGUF', opts()), (err: unknown) => err instanceof DownloadInProgressError && err.message.includes(String(process.pid)))
    await first
    assert.deepEqual(readFileSync(join(modelsDir, 'stories260k-f32.gguf')), stories)
    assert.deepEqual(readdirSync(join(modelsDir, '.partial')), [], 'no lock or partial left')
  })
})

test('a dropped connection is retried from where it broke, within the same pull', async () => {
  await withHub({ dropAfterBytes: 300_000 }, async (hub, opts, modelsDir) => {
    await pullModel('ggml-org/stories260k-GGUF', opts())
    assert.deepEqual(readFileSync(join(modelsDir, 'stories260k-f32.gguf')), stories)
    assert.ok(hub.stats.contentBytes <= stories.length + 32 * 1024, `served ${hub.stats.contentBytes}`)
    assert.ok(hub.stats.ranges.some((r) => /^bytes=[1-9]/.test(r)), 'the retry asked for the rest only')
  })
})

test('a stalled response (no byte for stallMs) is dropped and the rest fetched again', async () => {
  await withHub({ stallAfterBytes: 400_000 }, async (hub, opts, modelsDir) => {
    const t0 = Date.now()
    await pullModel('ggml-org/stories260k-GGUF', opts({ stallMs: 300 }))
    assert.deepEqual(readFileSync(join(modelsDir, 'stories260k-f32.gguf')), stories)
    assert.ok(hub.stats.contentBytes <= stories.length, `served ${hub.stats.contentBytes}`)
    assert.ok(Date.now() - t0 < 10_000)
  })
})

test('a server that answers 200 to a Range restarts the file from byte 0 and still ends right', async () => {
  const o: Partial<FakeHubOptions> = { chunkDelayMs: 1 }
  await withHub(o, async (hub, opts, modelsDir) => {
    const ctl = new AbortController()
    hub.onContent = (total) => { if (total >= stories.length / 3) ctl.abort() }
    await assert.rejects(pullModel('ggml-org/stories260k-GGUF', opts({ signal: ctl.signal })), AbortedError)
    hub.onContent = undefined
    o.ignoreRange = true
    const before = hub.stats.contentBytes
    const r = await pullModel('ggml-org/stories260k-GGUF', opts())
    assert.deepEqual(readFileSync(join(modelsDir, 'stories260k-f32.gguf')), stories)
    assert.equal(r.receivedBytes, stories.length)
    assert.equal(hub.stats.contentBytes - before, stories.length, 'the 200 answer itself was used, not fetched again')
  })
})

test('a flipped byte fails the sha256 check: no file under the final name, the partial is gone', async () => {
  await withHub({ flipByteAt: 12345 }, async (_hub, opts, modelsDir) => {
    await assert.rejects(pullModel('ggml-org/stories260k-GGUF', opts()), (err: unknown) => err instanceof ChecksumMismatchError && err.message.includes(sha256Hex(stories)))
    assert.equal(existsSync(join(modelsDir, 'stories260k-f32.gguf')), false)
    assert.deepEqual(readdirSync(join(modelsDir, '.partial')), [])
  })
})

test('a server with fewer bytes than announced (416 past its end) is a size error, nothing kept under the final name', async () => {
  await withHub({ announceExtraBytes: 70_000 }, async (hub, opts, modelsDir) => {
    await assert.rejects(pullModel('ggml-org/stories260k-GGUF', opts({ minPartBytes: 64 * 1024 })), (err: unknown) => err instanceof DownloadSizeError && /416/.test(err.message))
    assert.ok(hub.stats.status416 > 0)
    assert.equal(existsSync(join(modelsDir, 'stories260k-f32.gguf')), false)
  })
})

test('gated repo: without a token the error names the repo and HF_TOKEN; with it the pull works', async () => {
  await withHub({}, async (hub, opts) => {
    await assert.rejects(pullModel('org/gated-GGUF', opts()), (err: unknown) => err instanceof HubAuthError && /org\/gated-GGUF/.test(err.message) && /HF_TOKEN/.test(err.message))
    const o = opts()
    const r = await pullModel('org/gated-GGUF', { ...o, hub: { ...o.hub, token: 'hf_secret' } })
    assert.equal(r.id, 'tiny-Q8_0')
    assert.equal(hub.stats.cdnRequestsWithAuth, 0)
  })
})

test('unknown repo, missing quant (the error lists the quants), file URL of a mirror', async () => {
  await withHub({}, async (hub, opts, modelsDir) => {
    await assert.rejects(pullModel('org/nope', opts()), HubRepoNotFoundError)
    await assert.rejects(pullModel('org/split-GGUF:Q5_K_S', opts()), (err: unknown) => err instanceof QuantNotFoundError && err.message.includes('Q4_K_M, Q8_0'))
    const r = await pullModel(`${hub.endpoint}/org/split-GGUF/resolve/main/model-Q4_K_M.gguf`, opts({ hub: { endpoint: 'https://huggingface.invalid', token: 'hf_x', cacheDir: join(modelsDir, 'none') } }))
    assert.equal(r.id, 'model-Q4_K_M')
    assert.deepEqual(hub.stats.hubAuth, [], 'the token of another endpoint is not sent to the URL\'s host')
  })
})

test('a file already in the Hugging Face cache is used in place: zero bytes served', async () => {
  await withHub({}, async (hub, opts, modelsDir) => {
    const cacheDir = opts().hub.cacheDir
    const commit = 'a'.repeat(40)
    const repoDir = join(cacheDir, 'models--ggml-org--stories260k-GGUF')
    mkdirSync(join(repoDir, 'blobs'), { recursive: true })
    mkdirSync(join(repoDir, 'snapshots', commit), { recursive: true })
    mkdirSync(join(repoDir, 'refs'), { recursive: true })
    writeFileSync(join(repoDir, 'refs', 'main'), commit)
    writeFileSync(join(repoDir, 'blobs', sha256Hex(stories)), stories)
    symlinkSync(`../../blobs/${sha256Hex(stories)}`, join(repoDir, 'snapshots', commit, 'stories260k-f32.gguf'))
    repos['ggml-org/stories260k-GGUF']!.commit = commit
    try {
      const r = await pullModel('ggml-org/stories260k-GGUF', opts())
      assert.equal(hub.stats.contentBytes, 0)
      assert.equal(r.receivedBytes, 0)
      const stored = join(modelsDir, 'stories260k-f32.gguf')
      assert.ok(lstatSync(stored).isSymbolicLink())
      assert.equal(readlinkSync(stored), join(repoDir, 'blobs', sha256Hex(stories)))
      await new ModelStore(modelsDir).remove('stories260k-f32')
      assert.ok(existsSync(join(repoDir, 'blobs', sha256Hex(stories))), 'rm leaves the HF cache alone')
    } finally {
      delete repos['ggml-org/stories260k-GGUF']!.commit
    }
  })
})

/** Mounts a tmpfs of `size` on `dir` (root only: CI and this machine run as root); false when mounting is not allowed. */
function mountTmpfs (dir: string, size: string): boolean {
  mkdirSync(dir, { recursive: true })
  try { execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' }); return true } catch { return false }
}

test('a disk too small for the model (a real 16 MiB tmpfs): DiskSpaceError before any byte is downloaded, nothing written', async (t) => {
  await withHub({}, async (hub, opts, modelsDir) => {
    if (!mountTmpfs(modelsDir, '16m')) { t.skip('cannot mount a tmpfs here (not root)'); return }
    try {
      // stories260k is ~1 MB, but a pull keeps 64 MiB free beyond the download: 16 MiB is too small
      await assert.rejects(pullModel('ggml-org/stories260k-GGUF', opts()), (err: unknown) => err instanceof DiskSpaceError && err.message.includes(modelsDir) && /needs .* more, .* free/.test(err.message))
      assert.equal(hub.stats.contentBytes, 0, 'no content byte was requested')
      assert.deepEqual(readdirSync(modelsDir).filter((n) => n.endsWith('.gguf')), [])
      assert.deepEqual(readdirSync(join(modelsDir, '.partial')), [])
    } finally {
      execFileSync('umount', [modelsDir])
    }
  })
})
