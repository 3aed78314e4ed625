/**
 * A GGUF's own `tokenizer.chat_template` decides how chat prompts render (node-llama-cpp resolves it to the
 * specialised wrapper equivalent to the template, or renders the Jinja template itself). Tiny generated models
 * of each dense family carry the family's real template (test/fixtures/chat-templates); the rendered prompt is
 * the family's format, tools included where node-llama-cpp knows the format.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, describe, it } from 'node:test'
import { Tokenizer } from '../../src/engine/tokenizer.js'
import { generatedModel } from './helpers/generated-models.js'
import type { ChatPrompt } from '../../src/shared/inference.js'

const template = (name: string): string => readFileSync(`test/fixtures/chat-templates/${name}.jinja`, 'utf8')
const SIMPLE: ChatPrompt = { kind: 'chat', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }] }
const TOOLS: ChatPrompt = {
  kind: 'chat',
  messages: [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'weather', arguments: '{"city":"Paris"}' }] },
    { role: 'tool', toolCallId: 'c1', content: 'sunny' }
  ],
  tools: [{ name: 'weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } }]
}

const CASES: Array<{ arch: string, file: string, prompt: ChatPrompt, expect: string[] }> = [
  // node-llama-cpp finds its Gemma wrapper equivalent to the template (it joins system and user text with '---')
  { arch: 'gemma3', file: 'google-gemma-3-it', prompt: SIMPLE, expect: ['<start_of_turn>user\nBe brief.', 'Hi there<end_of_turn>\n<start_of_turn>model\n'] },
  { arch: 'gemma2', file: 'google-gemma-2-2b-it', prompt: { kind: 'chat', messages: [{ role: 'user', content: 'Hi there' }] }, expect: ['<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n'] },
  { arch: 'phi3', file: 'microsoft-Phi-3.5-mini-instruct', prompt: SIMPLE, expect: ['<|system|>\nBe brief.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\n'] },
  { arch: 'mistral3', file: 'mistralai-Ministral-3-14B-Reasoning-2512', prompt: SIMPLE, expect: ['[SYSTEM_PROMPT]Be brief.[/SYSTEM_PROMPT]', '[INST]Hi there[/INST]'] },
  // Llama 3.x files say `llama`: the 3.1 template with tools documents them and renders the call and its result in Llama 3.1's format
  { arch: 'llama', file: 'meta-llama-Llama-3.1-8B-Instruct', prompt: TOOLS, expect: ['<|start_header_id|>user<|end_header_id|>\n\n', '"name": "weather"', 'Weather in Paris?<|eot_id|>', '{"name": "weather", "parameters": {"city": "Paris"}}<|eot_id|>', '<|start_header_id|>ipython<|end_header_id|>', 'sunny', '<|start_header_id|>assistant<|end_header_id|>\n\n'] }
]

describe('chat templates from the GGUF', () => {
  const open: Tokenizer[] = []
  after(async () => { for (const t of open) await t.dispose() })

  for (const c of CASES) {
    it(`${c.arch} with ${c.file}'s template`, async () => {
      const path = generatedModel('q8_0', { arch: c.arch, layers: 1, chatTemplate: template(c.file), ...(c.arch === 'gemma2' || c.arch === 'gemma3' ? { archOptions: { swa: 8 } } : {}) })
      const tok = await Tokenizer.load(path)
      open.push(tok)
      assert.equal(tok.hasChatTemplate, true)
      const text = tok.renderChatText(c.prompt)
      // the tokens are those of the same text (special-token text parsed)
      assert.ok(tok.renderChat(c.prompt).tokens.length > 0)
      console.log(`# ${c.arch}: wrapper ${tok.chatWrapperName}: ${JSON.stringify(text.slice(0, 160))}`)
      for (const s of c.expect) assert.ok(text.includes(s), `${JSON.stringify(s)} in ${JSON.stringify(text)}`)
    })
  }

  it('the same llama weights without a template render another format: the template decides', async () => {
    const tok = await Tokenizer.load(generatedModel('q8_0', { arch: 'llama', layers: 1 }))
    open.push(tok)
    assert.equal(tok.hasChatTemplate, false)
    const text = tok.renderChatText(SIMPLE)
    console.log(`# llama without template: wrapper ${tok.chatWrapperName}`)
    assert.ok(!text.includes('<|start_header_id|>'), text)
  })
})
