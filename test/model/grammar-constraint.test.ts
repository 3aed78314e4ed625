import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createGrammarConstraint } from '../../src/engine/grammar/grammar-constraint.js'
import { vocabModel } from '../../src/engine/grammar/native-grammar.js'
import type { Token } from 'node-llama-cpp'
import { GrammarViolationError, InvalidGrammarError } from '../../src/shared/errors/grammar-errors.js'
import { parseToolCallText } from '../../src/shared/tool-call-format.js'

const MODEL = 'models/stories260k-f32.gguf'
const signal = new AbortController().signal

/** Walks the grammar choosing pseudo-random allowed tokens (a stand-in for any sampler) until EOG. */
async function walk (spec: Parameters<typeof createGrammarConstraint>[1], seed: number): Promise<{ text: string, complete: boolean }> {
  const c = await createGrammarConstraint(MODEL, spec, { signal })
  const model = await vocabModel(MODEL)
  const n = model.fileInfo.metadata.tokenizer.ggml.tokens.length
  const tokens: number[] = []
  // a random walk over byte-fallback tokens can spell invalid UTF-8 (the grammar counts bytes, not
  // characters, there); a real model rarely does: rank byte tokens last
  const isByte = Array.from({ length: n }, (_v, t) => /^<0x[0-9A-F]{2}>$/.test(model.fileInfo.metadata.tokenizer.ggml.tokens[t] ?? ''))
  let state = seed
  for (let step = 0; step < 400; step++) {
    const logits = new Float32Array(n)
    for (let t = 0; t < n; t++) { state = (state * 1103515245 + 12345) & 0x7fffffff; logits[t] = state / 0x7fffffff - (isByte[t] === true ? 2 : 0) }
    c.mask(logits)
    let best = -1
    for (let t = 0; t < n; t++) if (logits[t]! > (best < 0 ? Number.NEGATIVE_INFINITY : logits[best]!)) best = t
    assert.ok(best >= 0, 'some token is always allowed')
    c.accept(best)
    if (model.isEogToken(best as Token)) break
    tokens.push(best)
  }
  const complete = c.isComplete()
  c.dispose()
  return { text: model.detokenize(tokens as Token[]), complete }
}

describe('grammar constraint over the stories260k vocabulary', () => {
  it('any sampler under a JSON schema produces JSON that validates', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 6 }, age: { type: 'integer' }, ok: { type: 'boolean' }, tag: { enum: ['a', 'b'] } }, required: ['name', 'age', 'ok', 'tag'] }
    for (const seed of [1, 2, 3]) {
      const { text, complete } = await walk({ kind: 'json_schema', schema }, seed)
      assert.ok(complete, text)
      const v = JSON.parse(text) as Record<string, unknown>
      assert.equal(typeof v.name, 'string')
      assert.ok((v.name as string).length <= 6, text)
      assert.ok(Number.isInteger(v.age), text)
      assert.equal(typeof v.ok, 'boolean')
      assert.ok(['a', 'b'].includes(v.tag as string))
    }
  })

  it('a required tool call parses as a call to one of the tools', async () => {
    const tools = [{ name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 8 } }, required: ['city'] } }, { name: 'noop', parameters: {} }]
    for (const seed of [4, 5]) {
      const { text } = await walk({ kind: 'tool_call', tools, required: true }, seed)
      const calls = parseToolCallText(text, tools, () => 'id')
      assert.ok(calls !== undefined, text)
      assert.ok(['get_weather', 'noop'].includes(calls[0]!.name))
    }
  })

  it('validates before native calls: forbidden tokens, out-of-range ids, bad grammars', async () => {
    const c = await createGrammarConstraint(MODEL, { kind: 'json' }, { signal })
    const model = await vocabModel(MODEL)
    const a = model.tokenize('a', false)[0]!
    assert.equal(c.allows(a), false)
    assert.throws(() => { c.accept(a) }, GrammarViolationError)
    assert.throws(() => { c.accept(99999) }, GrammarViolationError)
    assert.throws(() => { c.accept(-1) }, GrammarViolationError)
    assert.throws(() => { c.accept(1.5) }, GrammarViolationError)
    assert.throws(() => { c.mask(new Float32Array(100000)) }, GrammarViolationError)
    assert.equal(c.isComplete(), false)
    await assert.rejects(createGrammarConstraint(MODEL, { kind: 'gbnf', grammar: 'root ::= undefined-rule' }, { signal }), InvalidGrammarError)
  })
})
