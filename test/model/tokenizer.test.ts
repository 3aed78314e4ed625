import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Tokenizer } from '../../src/engine/tokenizer.js'
import { UntokenizableTextError, ChatTemplateError } from '../../src/shared/errors/generation-errors.js'

const STORIES = 'models/stories260k-f32.gguf'
const TINY = 'test/fixtures/models/tinystories-656k-q8_0.gguf'

describe('stories260k (byte fallback)', () => {
  let tok: Tokenizer
  before(async () => { tok = await Tokenizer.load(STORIES) })
  after(async () => { await tok.dispose() })

  test('completion tokens start with BOS and round-trip the text', () => {
    const ids = tok.tokenizeCompletion('Once upon a time')
    assert.equal(ids[0], 1)
    assert.equal(tok.detokenize(ids.slice(1)), 'Once upon a time')
    assert.equal(tok.nVocab, 512)
  })

  test('any UTF-8 text tokenizes; streaming decode equals the whole decode and never splits a character', () => {
    const text = ' Grüße, 世界 😀 (x+y)*2 = {ok} #1'
    const ids = tok.tokenize(text)
    const decoder = tok.createDecoder([1])
    const parts = ids.map((t) => decoder.push(t))
    parts.push(decoder.flush())
    assert.ok(parts.every((p) => !p.includes('\uFFFD')))
    assert.equal(parts.join(''), tok.detokenize(ids, [1]))
    assert.ok(parts.join('').includes('世界 😀'))
    assert.ok(parts.filter((p) => p === '').length > 0, 'some byte tokens were held back')
  })

  test('EOS is end of generation, ordinary tokens are not', () => {
    assert.equal(tok.isEog(2), true)
    assert.equal(tok.isEog(tok.tokenize('Once')[0]!), false)
    assert.equal(tok.isEog(-1), false)
    assert.equal(tok.isEog(100000), false)
  })

  test('chat prompt goes through node-llama-cpp\'s chat wrapper (Llama2Chat), system and tool roles included', () => {
    const r = tok.renderChat({
      kind: 'chat',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'weather', arguments: '{"city":"Paris"}' }] },
        { role: 'tool', toolCallId: 'c1', content: 'sunny' }
      ],
      tools: [{ name: 'weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } }]
    })
    const text = tok.detokenize(r.tokens)
    assert.equal(r.tokens[0], 1)
    for (const s of ['[INST]', 'Be brief.', 'Weather?', 'sunny', 'weather']) assert.ok(text.includes(s), `${s} in ${text}`)
    const simple = tok.renderChat({ kind: 'chat', messages: [{ role: 'user', content: 'Hi' }] })
    assert.ok(tok.detokenize(simple.tokens).trimEnd().endsWith('[/INST]'))
  })

  test('a tool message without a matching call is a typed error', () => {
    assert.throws(() => tok.renderChat({ kind: 'chat', messages: [{ role: 'tool', toolCallId: 'x', content: 'r' }] }), ChatTemplateError)
  })
})

describe('tinystories-656k (no byte fallback): text outside the vocabulary is refused, never aborts', () => {
  let tok: Tokenizer
  before(async () => { tok = await Tokenizer.load(TINY) })
  after(async () => { await tok.dispose() })

  test('characters known to abort llama.cpp give UntokenizableTextError', () => {
    for (const ch of ['[', '{', '(', '+', '=', '*', '/', '%', '&', '@', '#', '\\', 'é', '😀']) {
      assert.throws(() => tok.tokenizeCompletion(`Once ${ch} upon`), UntokenizableTextError, ch)
    }
  })

  test('plain English tokenizes', () => {
    const ids = tok.tokenizeCompletion('Once upon a time, Lily said: "Hi!" - it\'s 3pm.\n')
    assert.equal(ids[0], 1)
    assert.ok(ids.length > 5)
  })

  test('random text either tokenizes or is refused (the process survives)', () => {
    let seed = 12345
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
    const pool = 'abcXYZ019 .,!?\'"-:;\n[]{}()+=*/%&@#\\~^|<>`$_éü中😀\t\r'
    const chars = [...pool]
    let ok = 0
    for (let i = 0; i < 400; i++) {
      const text = Array.from({ length: 1 + rnd(12) }, () => chars[rnd(chars.length)]).join('')
      try { tok.tokenize(text); tok.tokenizeCompletion(text); ok++ } catch (err) { assert.ok(err instanceof UntokenizableTextError, String(err)) }
    }
    assert.ok(ok > 0)
  })

  test('its chat wrapper text contains "#": chat prompts are refused, not aborted', () => {
    assert.throws(() => tok.renderChat({ kind: 'chat', messages: [{ role: 'user', content: 'Hi' }] }), UntokenizableTextError)
  })
})
