import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runGenerationLoop, runTokenLoop } from '../../../src/node/generation-loop.js'
import type { GenerationTokenizer, TokenForward, TokenPredictor } from '../../../src/node/generation-loop.js'
import type { GenerationEvent } from '../../../src/shared/inference.js'

/**
 * Pure tests of runTokenLoop's event contract and of failover resumption: a scripted model (token i of
 * the completion is SCRIPT[i]) and a tokenizer whose tokens 1–2 are the two UTF-8 bytes of "é", so text
 * is held back mid-character, and whose stop strings span several tokens.
 */
const PIECES: Record<number, string> = { 3: 'a', 4: 'b', 5: ' ', 6: 'S', 7: 'T', 8: 'O', 9: 'P', 10: 'x' }
const EOG = 0
const tokenizer: GenerationTokenizer = {
  isEog: (t) => t === EOG,
  createDecoder: () => {
    let pending: number | undefined
    return {
      push: (t) => {
        if (t === 1) { pending = t; return '' }
        if (t === 2 && pending === 1) { pending = undefined; return 'é' }
        return PIECES[t] ?? '?'
      },
      flush: () => { const out = pending !== undefined ? '\uFFFD' : ''; pending = undefined; return out }
    }
  }
}

function scripted (script: readonly number[], prompt: readonly number[], log: Array<readonly number[]>): TokenPredictor {
  let position = 0
  return {
    get position () { return position },
    async next (tokens) {
      log.push([...tokens])
      position += tokens.length
      return script[position - prompt.length] ?? EOG
    }
  }
}

async function run (script: number[], options: { stop?: string[], maxTokens?: number, resume?: number[] } = {}): Promise<{ events: GenerationEvent[], fed: Array<readonly number[]> }> {
  const prompt = [100, 101, 102]
  const fed: Array<readonly number[]> = []
  const events: GenerationEvent[] = []
  for await (const e of runTokenLoop({
    predictor: scripted(script, prompt, fed), tokenizer, promptTokens: prompt, maxTokens: options.maxTokens ?? 50, stop: options.stop ?? [], cells: 1000,
    ...(options.resume !== undefined ? { resume: options.resume } : {}), signal: new AbortController().signal
  })) events.push(e)
  return { events, fed }
}

const text = (events: GenerationEvent[]): string => events.map((e) => e.type === 'token' ? e.text : '').join('')

test('one token event per generated token, held text released by a later token', async () => {
  const script = [3, 1, 2, 4, 0]
  const { events } = await run(script)
  const tokens = events.filter((e) => e.type === 'token')
  assert.deepEqual(tokens.map((e) => e.type === 'token' ? [e.tokenId, e.text] : []), [[3, 'a'], [1, ''], [2, 'é'], [4, 'b']])
  assert.deepEqual(events.at(-1), { type: 'done', finishReason: 'stop', usage: { promptTokens: 3, completionTokens: 5 } })
})

test('maxTokens: the last token\'s event carries the flushed tail', async () => {
  const { events } = await run([3, 1, 9], { maxTokens: 2 })
  assert.deepEqual(events.filter((e) => e.type === 'token').map((e) => e.type === 'token' ? e.text : ''), ['a', '\uFFFD'])
  assert.deepEqual(events.at(-1), { type: 'done', finishReason: 'length', usage: { promptTokens: 3, completionTokens: 2 } })
})

test('resuming from the tokens already delivered continues the text exactly, at every cut point', async () => {
  const script = [3, 5, 6, 1, 2, 4, 6, 7, 3, 5, 6, 7, 8, 9, 10, 10, 0]
  for (const stop of [[], ['STOP'], ['ST', 'é b']]) {
    const whole = await run(script, { stop })
    const wholeTokens = whole.events.flatMap((e) => e.type === 'token' ? [e.tokenId] : [])
    for (let cut = 1; cut < wholeTokens.length; cut++) {
      // the client saw the events of the first `cut` tokens; the pipeline broke; a new one resumes
      const before = whole.events.filter((e) => e.type === 'token').slice(0, cut)
      const resumed = await run(script, { stop, resume: wholeTokens.slice(0, cut) })
      assert.equal(text(before) + text(resumed.events), text(whole.events), `stop ${JSON.stringify(stop)}, cut after ${cut}`)
      assert.deepEqual(resumed.events.at(-1), whole.events.at(-1), 'same finish and usage')
      // the whole history is prefilled in one call, then decoding continues token by token
      assert.deepEqual(resumed.fed[0], [100, 101, 102, ...wholeTokens.slice(0, cut)])
      assert.ok(resumed.fed.slice(1).every((f) => f.length === 1))
    }
  }
})

test('resumed tokens count towards maxTokens', async () => {
  const { events } = await run([3, 4, 3, 4, 3, 4], { maxTokens: 4, resume: [3, 4, 3] })
  assert.deepEqual(events.filter((e) => e.type === 'token').map((e) => e.type === 'token' ? e.tokenId : -1), [4])
  assert.deepEqual(events.at(-1), { type: 'done', finishReason: 'length', usage: { promptTokens: 3, completionTokens: 4 } })
})

/** A toy model whose logits depend on the whole history (position and last token): sampled runs branch. */
function toyModel (): TokenForward {
  const history: number[] = []
  return {
    get position () { return history.length },
    async forward (tokens) {
      history.push(...tokens)
      const last = history.at(-1)!
      // (11) f32: every token plausible, none certain
      return Float32Array.from({ length: 11 }, (_, v) => Math.sin(v * 1.7 + last * 0.9 + history.length * 0.31))
    }
  }
}

test('a seeded sampled generation resumed at any point draws what the unbroken one drew', async () => {
  const run = async (resume?: number[]): Promise<number[]> => {
    const out: number[] = []
    for await (const e of runGenerationLoop({
      model: toyModel(), tokenizer: { isEog: () => false, createDecoder: () => ({ push: (t) => String.fromCharCode(97 + t), flush: () => '' }) },
      promptTokens: [1, 2], maxTokens: 40, sampling: { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 1234 }, stop: [], cells: 100, prefillChunk: 8,
      ...(resume !== undefined ? { resume } : {}), signal: new AbortController().signal
    })) if (e.type === 'token') out.push(e.tokenId)
    return out
  }
  const whole = await run()
  assert.equal(whole.length, 40)
  assert.ok(new Set(whole).size > 3, 'a sampled run, not a constant')
  for (const cut of [1, 7, 20, 39]) assert.deepEqual([...whole.slice(0, cut), ...await run(whole.slice(0, cut))], whole, `resumed after ${cut}`)
})
