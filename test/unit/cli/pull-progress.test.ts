import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Writable } from 'node:stream'
import { RateMeter, createPullReporter, formatBytes, formatEta, progressLine } from '../../../src/cli/pull-progress.js'

test('bytes and ETA formatting', () => {
  assert.equal(formatBytes(512), '512 B')
  assert.equal(formatBytes(1536), '1.5 KiB')
  assert.equal(formatBytes(4.7 * 2 ** 30), '4.7 GiB')
  assert.equal(formatEta(42.4), '42s')
  assert.equal(formatEta(185), '3m05s')
  assert.equal(formatEta(7620), '2h07m')
  assert.equal(formatEta(undefined), '--')
  assert.equal(formatEta(Infinity), '--')
})

test('rate over a sliding window; resumed bytes are not speed', () => {
  const m = new RateMeter(5000)
  assert.equal(m.sample(0, 1000), undefined)
  assert.equal(m.sample(1000, 3000), 2000)
  assert.equal(m.sample(2000, 5000), 2000)
  assert.deepEqual(progressLine('a.gguf', 5000, 25000, 2000), { type: 'progress', file: 'a.gguf', completed: 5000, total: 25000, bytesPerSecond: 2000, etaSeconds: 10 })
})

test('off a TTY: one JSON line per event, progress at most once a second (the last one always)', () => {
  let text = ''
  const out = new Writable({ write (chunk, _enc, cb) { text += String(chunk); cb() } }) as unknown as NodeJS.WriteStream
  let t = 0
  const r = createPullReporter(out, () => t)
  r.onEvent({ type: 'file', name: 'a.gguf', sha256: undefined, total: 100, completed: 0, source: 'download' })
  for (let i = 1; i <= 100; i++) { t += 50; r.onEvent({ type: 'progress', name: 'a.gguf', sha256: undefined, completed: i, total: 100 }) }
  r.onEvent({ type: 'verifying', name: 'a.gguf' })
  r.stop()
  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { type: string, completed?: number })
  const progress = lines.filter((l) => l.type === 'progress')
  assert.ok(progress.length >= 5 && progress.length <= 7, `${progress.length} progress lines over 5 s`)
  assert.equal(progress.at(-1)!.completed, 100)
  assert.deepEqual([lines[0]!.type, lines.at(-1)!.type], ['file', 'verifying'])
})
