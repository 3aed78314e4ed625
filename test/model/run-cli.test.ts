/**
 * `exo-p2p run` as a real process on real ggml: greedy text equals node-llama-cpp's LlamaCompletion for
 * the model whole and split into in-process shards (hidden states through the tensor codec); bad input
 * ends with exit code 1 and a message, never a native abort.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { splitGguf } from '../../scripts/split-gguf.js'
import { referenceGreedy } from './helpers/completion-reference.js'

const STORIES = 'models/stories260k-f32.gguf'
const TINY = 'test/fixtures/models/tinystories-656k-q8_0.gguf'
const PROMPT = 'Once upon a time'

function run (...args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, ['bin/exo-p2p.js', 'run', ...args], { encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** stdout of `run` is the completion plus one newline */
const completionOf = (stdout: string): string => { assert.ok(stdout.endsWith('\n')); return stdout.slice(0, -1) }

describe('greedy text equals node-llama-cpp LlamaCompletion', () => {
  let stories: string
  before(async () => { stories = (await referenceGreedy(STORIES, PROMPT, 30)).text })

  for (const shards of ['1', '2', '5']) {
    test(`bundled stories260k, --shards ${shards}`, () => {
      const r = run('--prompt', PROMPT, '--max-tokens', '30', '--temperature', '0', '--shards', shards)
      assert.equal(r.status, 0, r.stderr)
      assert.equal(completionOf(r.stdout), stories)
      assert.match(r.stderr, /generated 30 tokens/)
    })
  }

  test('stories260k as 3 split parts (gguf-split layout), --model <first part>, --shards 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'exo-run-split-'))
    try {
      const parts = splitGguf({ input: STORIES, outPrefix: join(dir, 'stories260k-f32'), parts: 3 })
      const r = run('--model', parts[0]!, '--prompt', PROMPT, '--max-tokens', '30', '--temperature', '0', '--shards', '2')
      assert.equal(r.status, 0, r.stderr)
      assert.equal(completionOf(r.stdout), stories)
      // a broken split: exit code 1 and the missing part's name, no abort
      rmSync(parts[1]!)
      const bad = run('--model', parts[0]!, '--prompt', PROMPT, '--max-tokens', '3')
      assert.equal(bad.status, 1, bad.stderr)
      assert.ok(bad.stderr.includes(`missing: ${parts[1]!}`), bad.stderr)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('tinystories-656k Q8_0, --shards 2 (quantised weights, no byte fallback)', async () => {
    const ref = await referenceGreedy(TINY, PROMPT, 30)
    const r = run('--model', TINY, '--prompt', PROMPT, '--max-tokens', '30', '--temperature', '0', '--shards', '2')
    assert.equal(r.status, 0, r.stderr)
    assert.equal(completionOf(r.stdout), ref.text)
  })
})

describe('bad input: exit code 1 with a message, never an abort', () => {
  const cases: Array<{ name: string, args: string[], message: RegExp }> = [
    { name: 'text outside a vocabulary without byte fallback', args: ['--model', TINY, '--prompt', 'a (b) = {c} #d é'], message: /not in the vocabulary/ },
    { name: 'more shards than layers', args: ['--prompt', PROMPT, '--shards', '6'], message: /cannot split 5 layers into 6 shards/ },
    { name: 'max tokens 0', args: ['--prompt', PROMPT, '--max-tokens', '0'], message: /integer ≥ 1/ },
    { name: 'negative temperature', args: ['--prompt', PROMPT, '--temperature', '-1'], message: /temperature/ },
    { name: 'missing model file', args: ['--model', 'nope.gguf', '--prompt', PROMPT], message: /model file not found/ },
    { name: 'missing prompt', args: [], message: /--prompt/ }
  ]
  for (const c of cases) {
    test(c.name, () => {
      const r = run(...c.args)
      assert.equal(r.status, 1, `status ${r.status}; stderr ${r.stderr}`)
      assert.match(r.stderr, c.message)
    })
  }
})
