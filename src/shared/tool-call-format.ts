import type { ToolCall, ToolDefinition } from './inference.js'

/**
 * The text a model writes, under the `tool_call` grammar, to call a tool: ONE JSON object
 *   {"name": "<one of the tool names>", "arguments": { ...matching that tool's parameters schema... }}
 * The grammar (src/engine/grammar) builds its schema from `toolCallJsonSchema`; the API parses the
 * text with `parseToolCallText`. Both sides live here so they cannot drift apart.
 */
export function toolCallJsonSchema (tools: ToolDefinition[]): Record<string, unknown> {
  const one = (t: ToolDefinition): Record<string, unknown> => ({
    type: 'object',
    properties: { name: { const: t.name }, arguments: argumentsSchema(t.parameters) },
    required: ['name', 'arguments'],
    additionalProperties: false
  })
  if (tools.length === 1 && tools[0] !== undefined) return one(tools[0])
  return { oneOf: tools.map(one) }
}

function argumentsSchema (parameters: Record<string, unknown>): Record<string, unknown> {
  // A tool without a parameters schema takes an (empty or free) object.
  if (Object.keys(parameters).length === 0) return { type: 'object', properties: {}, additionalProperties: false }
  return parameters
}

/**
 * Parses model output as a tool call. Returns undefined when the text is not a call to one of
 * `tools` (not JSON, not an object, unknown name, arguments not an object): the caller then treats
 * the text as plain content. Accepts a single call object or an array of them.
 */
export function parseToolCallText (text: string, tools: ToolDefinition[], newId: () => string): ToolCall[] | undefined {
  const trimmed = text.trim()
  if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(trimmed)
  } catch {
    return undefined // not JSON: plain content
  }
  const items = Array.isArray(parsed) ? parsed : [parsed]
  if (items.length === 0) return undefined
  const names = new Set(tools.map((t) => t.name))
  const calls: ToolCall[] = []
  for (const item of items) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return undefined
    const { name, arguments: args } = item as { name?: unknown, arguments?: unknown }
    if (typeof name !== 'string' || !names.has(name)) return undefined
    const argsValue = args ?? {}
    if (typeof argsValue !== 'object' || argsValue === null || Array.isArray(argsValue)) return undefined
    calls.push({ id: newId(), name, arguments: JSON.stringify(argsValue) })
  }
  return calls
}
