import { parseToolCallText } from '../shared/tool-call-format.js'
import { newId } from './dialects/common.js'
import type { GenerationEvent, InferenceRequest } from '../shared/inference.js'

/**
 * Turns a generation under the `tool_call` grammar into tool calls, once, for every dialect.
 * Text that starts (after whitespace) with `{` or `[` is held back until `done` and parsed with
 * `parseToolCallText`; if it is a call, `done` carries `toolCalls` and finish reason `tool_calls`
 * and no token events are emitted for it; if not, the held text is released as one token event.
 * Text that starts with anything else streams through unchanged. Without tools: identity.
 * If the service already filled `done.toolCalls`, those are kept.
 */
export async function * withToolCalls (events: AsyncIterable<GenerationEvent>, request: InferenceRequest): AsyncIterable<GenerationEvent> {
  const grammar = request.grammar
  if (grammar?.kind !== 'tool_call') { yield * events; return }
  let held = ''
  let heldTokenId = -1
  let mode: 'undecided' | 'holding' | 'passing' = 'undecided'
  for await (const ev of events) {
    if (ev.type === 'token') {
      if (mode === 'passing') { yield ev; continue }
      held += ev.text
      heldTokenId = ev.tokenId
      if (mode === 'undecided') {
        const start = held.trimStart()
        if (start === '') continue
        mode = start.startsWith('{') || start.startsWith('[') ? 'holding' : 'passing'
        if (mode === 'passing') { yield { type: 'token', text: held, tokenId: ev.tokenId }; held = '' }
      }
      continue
    }
    if (ev.toolCalls !== undefined && ev.toolCalls.length > 0) { yield ev; return }
    const calls = mode === 'holding' ? parseToolCallText(held, grammar.tools, () => newId('call_')) : undefined
    if (calls !== undefined) {
      yield { ...ev, finishReason: ev.finishReason === 'stop' ? 'tool_calls' : ev.finishReason, toolCalls: calls }
      return
    }
    if (held !== '') yield { type: 'token', text: held, tokenId: heldTokenId }
    yield ev
    return
  }
}
