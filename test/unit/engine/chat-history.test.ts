import assert from 'node:assert/strict'
import { test } from 'node:test'
import { toChatFunctions, toChatHistory } from '../../../src/engine/chat-history.js'
import { ChatTemplateError } from '../../../src/shared/errors/generation-errors.js'
import type { ChatMessage } from '../../../src/shared/inference.js'

test('roles map to node-llama-cpp history items; an empty model turn is appended to generate into', () => {
  const h = toChatHistory([{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }, { role: 'assistant', content: 'A' }, { role: 'user', content: 'U2' }])
  assert.deepEqual(h, [
    { type: 'system', text: 'S' }, { type: 'user', text: 'U' }, { type: 'model', response: ['A'] }, { type: 'user', text: 'U2' }, { type: 'model', response: [] }
  ])
})

test('a trailing assistant message is continued (prefill), not followed by a new turn', () => {
  const h = toChatHistory([{ role: 'user', content: 'U' }, { role: 'assistant', content: 'Once' }])
  assert.deepEqual(h.at(-1), { type: 'model', response: ['Once'] })
  assert.equal(h.length, 2)
})

test('tool results attach to their calls by id, in any order', () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: 'weather and time?' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'a', name: 'weather', arguments: '{"city":"Oslo"}' }, { id: 'b', name: 'time', arguments: '{}' }] },
    { role: 'tool', toolCallId: 'b', content: '12:00' },
    { role: 'tool', toolCallId: 'a', content: 'rain' }
  ]
  const h = toChatHistory(messages)
  assert.equal(h.length, 2) // the model turn with its calls is continued
  assert.deepEqual(h[1], {
    type: 'model',
    response: [
      { type: 'functionCall', name: 'weather', params: { city: 'Oslo' }, result: 'rain' },
      { type: 'functionCall', name: 'time', params: {}, result: '12:00' }
    ]
  })
})

test('a tool message without an id answers the oldest open call', () => {
  const h = toChatHistory([{ role: 'assistant', content: 'x', toolCalls: [{ id: 'a', name: 'f', arguments: '1' }] }, { role: 'tool', content: 'r' }, { role: 'user', content: 'thanks' }])
  assert.deepEqual(h[0], { type: 'model', response: ['x', { type: 'functionCall', name: 'f', params: 1, result: 'r' }] })
  assert.deepEqual(h.at(-1), { type: 'model', response: [] })
})

const bad: Array<{ name: string, messages: ChatMessage[] }> = [
  { name: 'no messages', messages: [] },
  { name: 'tool without any call', messages: [{ role: 'tool', content: 'r' }] },
  { name: 'tool answering an unknown id', messages: [{ role: 'assistant', content: '', toolCalls: [{ id: 'a', name: 'f', arguments: '{}' }] }, { role: 'tool', toolCallId: 'z', content: 'r' }] },
  { name: 'tool answering twice', messages: [{ role: 'assistant', content: '', toolCalls: [{ id: 'a', name: 'f', arguments: '{}' }] }, { role: 'tool', toolCallId: 'a', content: 'r' }, { role: 'tool', toolCallId: 'a', content: 'r' }] },
  { name: 'arguments that are not JSON', messages: [{ role: 'assistant', content: '', toolCalls: [{ id: 'a', name: 'f', arguments: '{oops' }] }] }
]
for (const row of bad) {
  test(`typed error: ${row.name}`, () => assert.throws(() => toChatHistory(row.messages), ChatTemplateError))
}

test('tools become function definitions; none → undefined', () => {
  assert.equal(toChatFunctions(undefined), undefined)
  assert.equal(toChatFunctions([]), undefined)
  assert.deepEqual(toChatFunctions([{ name: 'f', description: 'd', parameters: { type: 'object' } }, { name: 'g', parameters: {} }]), { f: { description: 'd', params: { type: 'object' } }, g: { params: {} } })
})
