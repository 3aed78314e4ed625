import { InvalidGrammarError } from '../../shared/errors/grammar-errors.js'
import { toolCallJsonSchema } from '../../shared/tool-call-format.js'
import { toSubsetSchema } from './json-schema-subset.js'
import type { GrammarSpec } from '../../shared/inference.js'

/**
 * GrammarSpec → GBNF text (llama.cpp grammar syntax, root rule `root`).
 *  - json:         any JSON object
 *  - json_schema:  the schema, through node-llama-cpp's JSON-schema → GBNF converter
 *  - tool_call:    the call object of src/shared/tool-call-format.ts; when not `required`, the root
 *                  also admits free text that does not start with `{`, `[` or whitespace
 *  - gbnf:         the client's grammar, length-checked (llama.cpp parses it)
 */

/** Max size of a user GBNF grammar or a generated one. */
export const MAX_GRAMMAR_CHARS = 256 * 1024

type SchemaToGbnf = (schema: unknown, options?: { allowNewLines?: boolean, scopePadSpaces?: number }) => string
let converter: Promise<SchemaToGbnf> | undefined

/**
 * node-llama-cpp's own converter, a pure function that its package does not export on its own
 * (only inside LlamaJsonSchemaGrammar, which needs a loaded Llama and appends "\n\n\n\n" [\n]*).
 * Pinned to node-llama-cpp 3.22.1; the suffix check below fails loudly if that changes.
 */
async function loadConverter (): Promise<SchemaToGbnf> {
  converter ??= import(new URL('./utils/gbnfJson/getGbnfGrammarForGbnfJsonSchema.js', import.meta.resolve('node-llama-cpp')).href)
    .then((m: { getGbnfGrammarForGbnfJsonSchema: SchemaToGbnf }) => m.getGbnfGrammarForGbnfJsonSchema)
  return await converter
}

const TRAILER = ' "\\n\\n\\n\\n" [\\n]*'

/** Free text for `auto` tool choice: anything not starting like a JSON value or with whitespace. */
const FREE_TEXT_RULE = 'exo-free-text ::= [^{[ \\t\\r\\n\\x00] [^\\x00]*'

export async function gbnfForSpec (spec: GrammarSpec): Promise<string> {
  switch (spec.kind) {
    case 'gbnf': {
      if (spec.grammar.length === 0 || spec.grammar.length > MAX_GRAMMAR_CHARS) throw new InvalidGrammarError(`grammar must have 1..${MAX_GRAMMAR_CHARS} characters`)
      if (spec.grammar.includes('\x00')) throw new InvalidGrammarError('grammar must not contain NUL')
      if (!/^\s*root\s*::=/m.test(spec.grammar)) throw new InvalidGrammarError('grammar must define a root rule')
      return spec.grammar
    }
    case 'json': return await schemaGbnf({ type: 'object', additionalProperties: true }, false)
    case 'json_schema': return await schemaGbnf(spec.schema, false)
    case 'tool_call': {
      if (spec.tools.length === 0) throw new InvalidGrammarError('tool_call grammar needs at least one tool')
      return await schemaGbnf(toolCallJsonSchema(spec.tools), !spec.required)
    }
  }
}

async function schemaGbnf (schema: Record<string, unknown>, orFreeText: boolean): Promise<string> {
  const subset = toSubsetSchema(schema)
  let text: string
  try {
    text = (await loadConverter())(subset, { allowNewLines: false })
  } catch (err) {
    throw new InvalidGrammarError(`schema not supported by the grammar converter: ${(err as Error).message}`, { cause: err })
  }
  const lines = text.split('\n')
  const rootIndex = lines.findIndex((l) => l.startsWith('root ::= '))
  const root = lines[rootIndex]
  if (root === undefined || !root.endsWith(TRAILER)) throw new Error('node-llama-cpp JSON-schema converter output changed (root trailer missing)')
  const body = root.slice('root ::= '.length, -TRAILER.length)
  // node-llama-cpp's integer rule admits exponents ("1e-3" is not an integer): integers are plain digits
  for (const [i, line] of lines.entries()) {
    if (line.startsWith('integer-number-rule ::= ')) lines[i] = 'integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15})'
  }
  lines[rootIndex] = orFreeText ? `root ::= ( ${body} ) | exo-free-text` : `root ::= ${body}`
  if (orFreeText) lines.push(FREE_TEXT_RULE)
  const out = lines.join('\n')
  if (out.length > MAX_GRAMMAR_CHARS) throw new InvalidGrammarError(`schema produces a grammar over ${MAX_GRAMMAR_CHARS} characters`)
  return out
}
