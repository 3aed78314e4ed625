import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { toSubsetSchema, ANY_JSON } from '../../../../src/engine/grammar/json-schema-subset.js'
import { gbnfForSpec } from '../../../../src/engine/grammar/gbnf-for-spec.js'
import { InvalidGrammarError } from '../../../../src/shared/errors/grammar-errors.js'

describe('JSON schema → converter subset', () => {
  it('keeps the shape, drops value-only keywords, maps anyOf/definitions', () => {
    const out = toSubsetSchema({
      $schema: 'x', title: 't', type: 'object',
      properties: { n: { type: 'integer', minimum: 3 }, s: { type: 'string', maxLength: 5, pattern: 'a+' }, u: { anyOf: [{ type: 'string' }, { type: 'null' }] }, r: { $ref: '#/definitions/D' } },
      required: ['n', 'nope'],
      definitions: { D: { enum: ['a', 'b'] } }
    })
    assert.deepEqual(out, {
      type: 'object',
      properties: { n: { type: 'integer' }, s: { type: 'string', maxLength: 5 }, u: { oneOf: [{ type: 'string' }, { type: 'null' }] }, r: { $ref: '#/$defs/D' } },
      required: ['n'],
      additionalProperties: false,
      $defs: { D: { enum: ['a', 'b'] } }
    })
    assert.deepEqual(toSubsetSchema({}), ANY_JSON)
    assert.deepEqual(toSubsetSchema({ type: ['string', 'null'] }), { type: ['string', 'null'] })
  })

  it('rejects what it cannot express, and hostile depth', () => {
    for (const bad of [{ type: 'tuple' }, { $ref: 'http://x' }, { $ref: '#/$defs/missing' }, { allOf: [{}, {}] }, { enum: [] }, { type: 'string', maxLength: -1 }, { const: { a: 1 } }]) {
      assert.throws(() => toSubsetSchema(bad), InvalidGrammarError, JSON.stringify(bad))
    }
    let deep: Record<string, unknown> = { type: 'string' }
    for (let i = 0; i < 100; i++) deep = { type: 'array', items: deep }
    assert.throws(() => toSubsetSchema(deep), InvalidGrammarError)
  })
})

describe('GrammarSpec → GBNF', () => {
  it('json schema: root without the converter trailer', async () => {
    const g = await gbnfForSpec({ kind: 'json_schema', schema: { type: 'object', properties: { age: { type: 'integer' } }, required: ['age'] } })
    const root = g.split('\n').find((l) => l.startsWith('root ::= '))
    assert.ok(root !== undefined)
    assert.doesNotMatch(root, /\\n\\n/)
    assert.match(g, /"\\"age\\""/)
  })

  it('tool call: const names; auto adds a free-text alternative', async () => {
    const tools = [{ name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 8 } } } }]
    const req = await gbnfForSpec({ kind: 'tool_call', tools, required: true })
    assert.match(req, /get_weather/)
    assert.doesNotMatch(req, /exo-free-text/)
    const auto = await gbnfForSpec({ kind: 'tool_call', tools, required: false })
    assert.match(auto, /^root ::= \(.*\) \| exo-free-text$/m)
    await assert.rejects(gbnfForSpec({ kind: 'tool_call', tools: [], required: true }), InvalidGrammarError)
    await assert.rejects(gbnfForSpec({ kind: 'gbnf', grammar: 'start ::= "x"' }), InvalidGrammarError)
  })
})
