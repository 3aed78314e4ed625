// Chat panel: streams a reply from POST /v1/chat/completions (or /v1/completions for models without a chat
// template) with stream:true, shows live tokens/s, and Stop aborts the fetch (the node cancels generation).
import { h, render } from './dom.js'
import { errorMessage, UnauthorizedError } from './api.js'
import { readSse, createTokenMeter } from './sse.js'
import { formatMs } from './format.js'

/**
 * @param {{ form: HTMLFormElement, model: HTMLSelectElement, mode: HTMLSelectElement, maxTokens: HTMLInputElement,
 *   input: HTMLTextAreaElement, send: HTMLButtonElement, stop: HTMLButtonElement, clear: HTMLButtonElement,
 *   log: HTMLElement, stats: HTMLElement, note: HTMLElement }} els
 * @param {ReturnType<typeof import('./api.js').createApi>} api
 */
export function createChat (els, api) {
  /** @type {Array<{ role: 'user' | 'assistant', content: string }>} */
  let history = []
  /** @type {AbortController | undefined} */
  let running
  /** models found to have no chat template: use /v1/completions for them */
  const textOnly = new Set()
  /** models whose template was looked up: model id → has a chat template */
  const hasTemplate = new Map()

  /**
   * Whether `model` has a chat template: `has_chat_template` in GET /v1/models when the node lists it,
   * else Ollama's POST /api/show (`template` "{{ .Prompt }}" = raw prompt, no chat template);
   * unknown counts as chat (a template error then falls back to /v1/completions).
   * @param {string} model @param {AbortSignal} signal
   */
  async function chatTemplateOf (model, signal) {
    if (textOnly.has(model)) return false
    const known = hasTemplate.get(model)
    if (known !== undefined) return known
    try {
      const res = await api.request('/api/show', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model }), signal
      })
      if (!res.ok) return true
      const show = await res.json()
      const has = typeof show?.template !== 'string' || show.template.trim() !== '{{ .Prompt }}'
      hasTemplate.set(model, has)
      return has
    } catch {
      return true
    }
  }

  const setRunning = (/** @type {boolean} */ on) => {
    els.send.disabled = on
    els.stop.disabled = !on
    els.form.dataset.state = on ? 'streaming' : 'idle'
  }
  setRunning(false)

  /**
   * @param {Array<Record<string, unknown>>} models GET /v1/models `data`
   * @param {string} [problem] why the list could not be read
   */
  function setModels (models, problem) {
    render(els.note, problem === undefined
      ? (models.length === 0 ? 'This node lists no model it can serve.' : '')
      : `Cannot list models: ${problem}`)
    const current = els.model.value
    const ids = models.map((m) => String(m.id))
    for (const m of models) {
      if (typeof m.has_chat_template === 'boolean') hasTemplate.set(String(m.id), m.has_chat_template)
    }
    if (ids.join('\n') === [...els.model.options].map((o) => o.value).join('\n')) return
    render(els.model, ...ids.map((id) => h('option', { value: id }, id)))
    if (ids.includes(current)) els.model.value = current
  }

  els.clear.addEventListener('click', () => { history = []; render(els.log); render(els.stats) })
  els.stop.addEventListener('click', () => running?.abort())
  els.input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); els.form.requestSubmit() }
  })
  els.form.addEventListener('submit', (e) => {
    e.preventDefault()
    const text = els.input.value.trim()
    if (text === '' || running !== undefined) return
    els.input.value = ''
    void send(text)
  })

  /** @param {string} text */
  async function send (text) {
    const model = els.model.value
    const maxTokens = Math.max(1, Math.min(4096, Number(els.maxTokens.value) || 128))
    const ctrl = new AbortController()
    running = ctrl
    setRunning(true)
    let mode = els.mode.value === 'auto'
      ? ((await chatTemplateOf(model, ctrl.signal)) ? 'chat' : 'completion')
      : els.mode.value
    const out = h('span', { class: 'text' })
    const reply = h('div', { class: 'msg assistant', 'data-state': 'streaming' }, out)
    const asCompletion = () => h('div', { class: 'msg completion' }, h('strong', {}, text), reply)
    /** @type {HTMLElement} */
    let turn = mode === 'completion' ? asCompletion() : h('div', { class: 'turn' }, h('div', { class: 'msg user' }, text), reply)
    els.log.append(turn)
    els.log.scrollTop = els.log.scrollHeight
    const meter = createTokenMeter(performance.now())
    const showStats = (/** @type {string} */ tail = '') => {
      const st = meter.stats(performance.now())
      render(els.stats,
        h('span', { class: 'tps' }, st.tokensPerSec === undefined ? '– tok/s' : `${st.tokensPerSec.toFixed(1)} tok/s`),
        ` · ${st.tokens} tokens`,
        st.ttftMs !== undefined && ` · first token ${formatMs(st.ttftMs)}`,
        ` · ${mode === 'chat' ? '/v1/chat/completions' : '/v1/completions'}`,
        tail !== '' && ` · ${tail}`)
    }
    let content = ''
    try {
      let res = await post(mode, model, text, maxTokens, ctrl.signal)
      if (!res.ok && els.mode.value === 'auto' && mode === 'chat' && res.status >= 400 && res.status < 500) {
        const msg = await errorMessage(res)
        if (!/template/i.test(msg)) throw new Error(msg)
        textOnly.add(model)
        mode = 'completion'
        const next = asCompletion()
        turn.replaceWith(next)
        turn = next
        res = await post(mode, model, text, maxTokens, ctrl.signal)
      }
      if (!res.ok) throw new Error(await errorMessage(res))
      if (res.body === null) throw new Error('empty response')
      let finish = ''
      for await (const ev of readSse(res.body)) {
        if (ev.data === '[DONE]') break
        const chunk = JSON.parse(ev.data)
        if (chunk.error !== undefined) throw new Error(chunk.error.message ?? JSON.stringify(chunk.error))
        const choice = chunk.choices?.[0]
        const piece = mode === 'chat' ? choice?.delta?.content : choice?.text
        if (typeof piece === 'string' && piece !== '') {
          meter.token(performance.now())
          reply.dataset.chunks = String(meter.stats().tokens)
          content += piece
          out.textContent = content
          els.log.scrollTop = els.log.scrollHeight
          showStats()
        }
        if (typeof choice?.finish_reason === 'string') finish = choice.finish_reason
      }
      reply.dataset.state = 'done'
      showStats(finish !== '' ? `finished: ${finish}` : 'finished')
      if (mode === 'chat') history.push({ role: 'user', content: text }, { role: 'assistant', content })
    } catch (err) {
      if (ctrl.signal.aborted) {
        reply.dataset.state = 'stopped'
        reply.append(h('span', { class: 'note' }, ' [stopped]'))
        showStats('stopped')
        if (mode === 'chat' && content !== '') history.push({ role: 'user', content: text }, { role: 'assistant', content })
      } else {
        reply.dataset.state = 'error'
        const msg = err instanceof UnauthorizedError ? 'An API key is needed to chat.' : String(err instanceof Error ? err.message : err)
        reply.append(h('span', { class: 'error' }, content === '' ? msg : ` [error: ${msg}]`))
        showStats('error')
      }
    } finally {
      running = undefined
      setRunning(false)
    }
  }

  /**
   * @param {string} mode 'chat' | 'completion'
   * @param {string} model @param {string} text @param {number} maxTokens @param {AbortSignal} signal
   */
  function post (mode, model, text, maxTokens, signal) {
    const body = mode === 'chat'
      ? { model, messages: [...history, { role: 'user', content: text }], max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } }
      : { model, prompt: text, max_tokens: maxTokens, stream: true }
    return api.request(mode === 'chat' ? '/v1/chat/completions' : '/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(body),
      signal
    })
  }

  return { setModels }
}
