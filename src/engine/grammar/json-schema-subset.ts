import { InvalidGrammarError } from '../../shared/errors/grammar-errors.js'

/**
 * Pure: an arbitrary client JSON Schema → the subset node-llama-cpp's JSON-schema → GBNF converter
 * understands (its `GbnfJsonSchema`): type (string/number/integer/boolean/null/object/array, or a list
 * of the scalar ones), const, enum, oneOf (anyOf → oneOf), properties / required /
 * additionalProperties, items / prefixItems / minItems / maxItems, string minLength / maxLength /
 * format (date-time, date, time), `$ref` to `#/$defs/…` (or `#/definitions/…`). Keywords outside the
 * subset that only narrow values (minimum, pattern, …) are dropped: the output still has the declared
 * shape. Shapes it cannot express throw InvalidGrammarError (400). Bounded: depth ≤ 32, ≤ 5000 nodes.
 */
export type SubsetSchema = Record<string, unknown>

const MAX_DEPTH = 32
const MAX_NODES = 5000
const SCALAR_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null'])
const FORMATS = new Set(['date-time', 'date', 'time'])

/** Any JSON value. */
export const ANY_JSON: SubsetSchema = { oneOf: [{ type: ['string', 'number', 'boolean', 'null'] }, { type: 'object', additionalProperties: true }, { type: 'array' }] }

export function toSubsetSchema (schema: unknown): SubsetSchema {
  const state = { nodes: 0 }
  if (!isObject(schema)) throw new InvalidGrammarError('schema must be a JSON object')
  const defsIn = { ...(isObject(schema.definitions) ? schema.definitions : {}), ...(isObject(schema.$defs) ? schema.$defs : {}) }
  const defNames = new Set(Object.keys(defsIn))
  const out = convert(schema, 0, state, defNames)
  if (defNames.size === 0) return out
  const $defs: Record<string, SubsetSchema> = {}
  for (const [name, def] of Object.entries(defsIn)) $defs[name] = convert(def, 1, state, defNames)
  return { ...out, $defs }
}

function convert (s: unknown, depth: number, state: { nodes: number }, defs: Set<string>): SubsetSchema {
  if (++state.nodes > MAX_NODES) throw new InvalidGrammarError(`schema has more than ${MAX_NODES} nodes`)
  if (depth > MAX_DEPTH) throw new InvalidGrammarError(`schema nests deeper than ${MAX_DEPTH} levels`)
  if (s === true || (isObject(s) && Object.keys(s).filter((k) => k !== 'description' && k !== 'title').length === 0)) return ANY_JSON
  if (!isObject(s)) throw new InvalidGrammarError('every schema node must be an object (or true)')
  const next = (x: unknown): SubsetSchema => convert(x, depth + 1, state, defs)

  if (typeof s.$ref === 'string') {
    const m = /^#\/(?:\$defs|definitions)\/([^/]+)$/.exec(s.$ref)
    if (m?.[1] === undefined || !defs.has(m[1])) throw new InvalidGrammarError(`unsupported or dangling $ref '${s.$ref.slice(0, 100)}'`)
    return { $ref: `#/$defs/${m[1]}` }
  }
  if ('const' in s) return { const: scalar(s.const, 'const') }
  if (Array.isArray(s.enum)) {
    if (s.enum.length === 0 || s.enum.length > 1000) throw new InvalidGrammarError('enum must have 1..1000 values')
    return { enum: s.enum.map((v) => scalar(v, 'enum')) }
  }
  const alternatives = Array.isArray(s.oneOf) ? s.oneOf : Array.isArray(s.anyOf) ? s.anyOf : undefined
  if (alternatives !== undefined) {
    if (alternatives.length === 0 || alternatives.length > 256) throw new InvalidGrammarError('oneOf/anyOf must have 1..256 entries')
    return alternatives.length === 1 ? next(alternatives[0]) : { oneOf: alternatives.map(next) }
  }
  if (Array.isArray(s.allOf)) {
    if (s.allOf.length !== 1) throw new InvalidGrammarError('allOf is supported with a single entry only')
    return next(s.allOf[0])
  }
  let type = s.type
  if (type === undefined) type = isObject(s.properties) ? 'object' : s.items !== undefined || Array.isArray(s.prefixItems) ? 'array' : undefined
  if (type === undefined) return ANY_JSON
  if (Array.isArray(type)) {
    if (type.length === 0 || !type.every((t) => typeof t === 'string')) throw new InvalidGrammarError('type list must hold type names')
    if (type.every((t) => SCALAR_TYPES.has(t))) return { type: [...new Set(type)] }
    return { oneOf: [...new Set(type)].map((t) => next({ ...s, type: t })) }
  }
  switch (type) {
    case 'string': {
      if (typeof s.format === 'string' && FORMATS.has(s.format)) return { type: 'string', format: s.format }
      return { type: 'string', ...bound(s.minLength, 'minLength'), ...bound(s.maxLength, 'maxLength') }
    }
    case 'number': case 'integer': case 'boolean': case 'null': return { type }
    case 'object': {
      const properties: Record<string, SubsetSchema> = {}
      const props = isObject(s.properties) ? s.properties : {}
      if (Object.keys(props).length > 1000) throw new InvalidGrammarError('more than 1000 properties')
      for (const [k, v] of Object.entries(props)) properties[k] = next(v)
      const required = Array.isArray(s.required) ? s.required.filter((r): r is string => typeof r === 'string' && r in properties) : undefined
      const ap = s.additionalProperties
      const additionalProperties = ap === true ? true : isObject(ap) ? next(ap) : ap === false ? false : Object.keys(properties).length === 0
      return { type: 'object', properties, ...(required !== undefined ? { required } : {}), additionalProperties }
    }
    case 'array': {
      const out: SubsetSchema = { type: 'array', ...bound(s.minItems, 'minItems'), ...bound(s.maxItems, 'maxItems') }
      if (s.items !== undefined && s.items !== true) out.items = next(s.items)
      if (Array.isArray(s.prefixItems)) out.prefixItems = s.prefixItems.map(next)
      return out
    }
    default: throw new InvalidGrammarError(`unsupported type '${String(type).slice(0, 50)}'`)
  }
}

function scalar (v: unknown, where: string): string | number | boolean | null {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v
  throw new InvalidGrammarError(`${where} values must be strings, finite numbers, booleans or null`)
}

function bound (v: unknown, key: string): Record<string, number> {
  if (v === undefined) return {}
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 100_000) throw new InvalidGrammarError(`${key} must be an integer in 0..100000`)
  return { [key]: v }
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
