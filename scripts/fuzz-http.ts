#!/usr/bin/env -S node --import tsx
/**
 * Sends seeded hostile bodies to every generation / tokenization POST route of a RUNNING node and fails
 * (exit 1) on any 5xx, any error answer that is not JSON, or any dropped connection; at the end the node
 * must still answer GET /cluster/state. Bodies: random bytes, invalid UTF-8, arbitrary JSON, valid bodies
 * of each dialect with fields replaced / removed / added (some stay valid and generate a few tokens), odd
 * content types, and now and then one over the 4 MiB body limit.
 *
 *   node --import tsx scripts/fuzz-http.ts --url http://127.0.0.1:52415 [--count 10000] [--seed 1]
 *     [--concurrency 8] [--api-key KEY] [--model stories260k-f32]
 */
import { parseArgs } from 'node:util'
import fc from 'fast-check'

const { values } = parseArgs({
  options: {
    url: { type: 'string' }, count: { type: 'string' }, seed: { type: 'string' }, concurrency: { type: 'string' },
    'api-key': { type: 'string' }, model: { type: 'string' }
  }
})
const URL_ = values.url ?? 'http://127.0.0.1:52415'
const COUNT = Number.parseInt(values.count ?? '10000', 10)
const SEED = Number.parseInt(values.seed ?? '1', 10)
const CONCURRENCY = Number.parseInt(values.concurrency ?? '8', 10)
const MODEL = values.model ?? 'stories260k-f32'
const KEY = values['api-key'] ?? process.env.EXO_P2P_API_KEY

/** Valid bodies, small max tokens: a mutation that stays valid costs a couple of tokens. */
const BASES: Record<string, Record<string, unknown>> = {
  '/v1/chat/completions': { model: MODEL, messages: [{ role: 'user', content: 'Once' }], max_tokens: 2, temperature: 0, stream: false, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }], tool_choice: 'none' },
  '/v1/completions': { model: MODEL, prompt: 'Once upon', max_tokens: 2, stop: ['\n'], seed: 3 },
  '/v1/responses': { model: MODEL, input: 'Once', max_output_tokens: 2 },
  '/v1/messages': { model: MODEL, max_tokens: 2, messages: [{ role: 'user', content: [{ type: 'text', text: 'Once' }] }], stream: true },
  '/v1/messages/count_tokens': { model: MODEL, messages: [{ role: 'user', content: 'Once upon a time' }] },
  '/api/chat': { model: MODEL, messages: [{ role: 'user', content: 'Once' }], options: { num_predict: 2 }, stream: false },
  '/api/generate': { model: MODEL, prompt: 'Once', options: { num_predict: 2 }, format: 'json' },
  '/api/show': { model: MODEL }
}
const ROUTES = Object.keys(BASES)

const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom(null, true, 0, -1, 1e308, -1e308, 2 ** 53 + 2, 0.5, '', 'x'.repeat(5000), [], {}, { type: 'json_schema', json_schema: { schema: { $ref: '#/$defs/a', $defs: { a: { $ref: '#/$defs/a' } } } } },
    Array.from({ length: 200 }, () => ({ role: 'user', content: 'a' })), '\u0000\ud800', { type: 'object', properties: { a: { type: 'nope' } } }),
  fc.string({ maxLength: 60 }),
  fc.integer({ min: -5, max: 70000 })
)
const keys = [...new Set(Object.values(BASES).flatMap((b) => Object.keys(b)).concat(['__proto__', 'constructor', 'n', 'logprobs', 'response_format', 'format', 'raw', 'system', 'options', 'stream_options', 'grammar']))]

interface Case { route: string, contentType: string, body: Uint8Array | string }

const put = (o: object, k: string, v: unknown): void => { Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true }) }
const mutated = (route: string): fc.Arbitrary<string> => fc.array(fc.record({
  path: fc.array(fc.oneof(fc.constantFrom(...keys), fc.constantFrom('0', '1', 'content', 'role', 'type', 'text', 'function', 'parameters', 'num_predict', 'stop')), { minLength: 1, maxLength: 3 }),
  value: hostile,
  del: fc.boolean()
}), { minLength: 1, maxLength: 4 }).map((edits) => {
  const body = structuredClone(BASES[route]!)
  for (const e of edits) {
    let node: unknown = body
    for (const k of e.path.slice(0, -1)) node = typeof node === 'object' && node !== null && Object.hasOwn(node, k) ? (node as Record<string, unknown>)[k] : undefined
    if (typeof node !== 'object' || node === null) continue
    if (e.del) Reflect.deleteProperty(node, e.path.at(-1)!)
    else put(node, e.path.at(-1)!, structuredClone(e.value))
  }
  return JSON.stringify(body)
})

const caseArb: fc.Arbitrary<Case> = fc.constantFrom(...ROUTES).chain((route) => fc.record({
  route: fc.constant(route),
  contentType: fc.constantFrom('application/json', 'application/json', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', ''),
  body: fc.oneof(
    { weight: 6, arbitrary: mutated(route) },
    { weight: 2, arbitrary: hostile.map((v) => JSON.stringify(v) ?? 'undefined') },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => s.slice(0, Math.max(0, s.length - 3)) + '{"a":') },
    { weight: 1, arbitrary: fc.constantFrom(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), '{"model":"' + MODEL + '","prompt":"\\ud800"}', '[' .repeat(100_000)) }
  )
}))

const cases = fc.sample(caseArb, { seed: SEED, numRuns: COUNT })
// one body over the 4 MiB limit per 2,000 (each costs a 4 MiB upload)
for (let i = 1999; i < cases.length; i += 2000) cases[i] = { route: ROUTES[i % ROUTES.length]!, contentType: 'application/json', body: `{"model":"${MODEL}","prompt":"${'a'.repeat(4 * 1024 * 1024 + 10)}"}` }

const byStatus = new Map<number, number>()
const failures: string[] = []
const fail = (c: Case, why: string): void => {
  if (failures.length < 20) failures.push(`${c.route} [${c.contentType}] ${why} — body: ${typeof c.body === 'string' ? c.body.slice(0, 200) : `<${c.body.byteLength} bytes>`}`)
  else failures.push('')
}

async function send (c: Case): Promise<void> {
  let res: Response
  try {
    res = await fetch(URL_ + c.route, {
      method: 'POST',
      headers: { ...(c.contentType !== '' ? { 'content-type': c.contentType } : {}), ...(KEY !== undefined ? { authorization: `Bearer ${KEY}` } : {}) },
      body: typeof c.body === 'string' ? c.body : Buffer.from(c.body),
      signal: AbortSignal.timeout(60_000)
    })
  } catch (err) {
    fail(c, `no answer (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message})`)
    return
  }
  byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1)
  let text: string
  try { text = await res.text() } catch (err) { fail(c, `body dropped after HTTP ${res.status} (${(err as Error).message})`); return }
  if (res.status >= 500) { fail(c, `HTTP ${res.status}: ${text.slice(0, 200)}`); return }
  if (res.status >= 400) {
    if (!/json/.test(res.headers.get('content-type') ?? '')) { fail(c, `HTTP ${res.status} not JSON (${res.headers.get('content-type') ?? 'no content-type'})`); return }
    try { JSON.parse(text) } catch { fail(c, `HTTP ${res.status} body does not parse: ${text.slice(0, 100)}`) }
  }
}

const t0 = performance.now()
let next = 0
await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
  while (next < cases.length) await send(cases[next++]!)
}))
const secs = (performance.now() - t0) / 1000
const alive = await fetch(`${URL_}/cluster/state`, { headers: KEY !== undefined ? { authorization: `Bearer ${KEY}` } : {}, signal: AbortSignal.timeout(10_000) }).then((r) => r.ok, () => false)
const statuses = [...byStatus].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ')
console.log(`fuzz-http: ${cases.length} bodies (seed ${SEED}) in ${secs.toFixed(1)} s (${(cases.length / secs).toFixed(0)}/s); statuses ${statuses}; failures ${failures.length}; node ${alive ? 'alive' : 'NOT ANSWERING'}`)
for (const f of failures.filter((x) => x !== '')) console.log(`  FAIL ${f}`)
process.exit(failures.length === 0 && alive ? 0 : 1)
