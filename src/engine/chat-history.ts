import { ChatTemplateError } from '../shared/errors/generation-errors.js'
import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelFunctions, ChatModelResponse } from 'node-llama-cpp'
import type { ChatMessage, ToolDefinition } from '../shared/inference.js'

/**
 * Converts our chat messages into node-llama-cpp's chat history (pure). Assistant tool calls become
 * `functionCall` items whose `result` is the content of the `tool` message answering them (matched by
 * `toolCallId`, else by order). The history always ends with a model turn: an empty one to generate
 * into, or the last assistant turn (prefill, or tool calls with their results), which generation continues.
 */
export function toChatHistory (messages: readonly ChatMessage[]): ChatHistoryItem[] {
  if (messages.length === 0) throw new ChatTemplateError('a chat prompt needs at least one message')
  const history: ChatHistoryItem[] = []
  let openCalls: ChatModelFunctionCall[] = [] // calls of the last assistant turn still without a result
  const callIds = new Map<ChatModelFunctionCall, string>()
  for (const [index, m] of messages.entries()) {
    switch (m.role) {
      case 'system':
        history.push({ type: 'system', text: m.content })
        break
      case 'user':
        history.push({ type: 'user', text: m.content })
        break
      case 'assistant': {
        const response: ChatModelResponse['response'] = []
        if (m.content !== '') response.push(m.content)
        openCalls = []
        for (const call of m.toolCalls ?? []) {
          const item: ChatModelFunctionCall = { type: 'functionCall', name: call.name, params: parseArguments(call.arguments, call.name), result: undefined }
          callIds.set(item, call.id)
          openCalls.push(item)
          response.push(item)
        }
        history.push({ type: 'model', response })
        break
      }
      case 'tool': {
        const i = m.toolCallId !== undefined ? openCalls.findIndex((c) => callIds.get(c) === m.toolCallId) : 0
        const call = openCalls[i]
        if (i < 0 || call === undefined) throw new ChatTemplateError(`message ${index} (tool) answers no pending tool call${m.toolCallId !== undefined ? ` with id '${m.toolCallId}'` : ''}`)
        call.result = m.content
        openCalls.splice(i, 1)
        break
      }
    }
  }
  // a trailing model turn (assistant prefill, or tool calls with their results) is continued, as LlamaChat does
  if (history.at(-1)?.type !== 'model') history.push({ type: 'model', response: [] })
  return history
}

/** Tools as node-llama-cpp's function definitions (the chat wrapper documents them in the prompt). */
export function toChatFunctions (tools: readonly ToolDefinition[] | undefined): ChatModelFunctions | undefined {
  if (tools === undefined || tools.length === 0) return undefined
  const out: Record<string, { description?: string, params?: any }> = {}
  for (const t of tools) out[t.name] = { ...(t.description !== undefined ? { description: t.description } : {}), params: t.parameters }
  return out
}

function parseArguments (text: string, name: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ChatTemplateError(`arguments of tool call '${name}' are not valid JSON`, { cause: err })
  }
}
