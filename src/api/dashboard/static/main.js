// Entry point: polls GET /cluster/state about every second and renders the panels; wires the chat.
import { createApi, HttpError, UnauthorizedError } from './api.js'
import { h, render } from './dom.js'
import { formatAgo, shortId } from './format.js'
import { trackMembers } from './mesh-view.js'
import { renderTopology } from './topology.js'
import { renderPlan } from './plan-view.js'
import { renderModels } from './models-view.js'
import { createChat } from './chat.js'

const POLL_MS = 1000
const STATE_TIMEOUT_MS = 3000
const MODELS_EVERY_MS = 5000

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id))

const api = createApi({ askKey })
const chat = createChat({
  form: $('chat'), model: $('chat-model'), mode: $('chat-mode'), maxTokens: $('chat-max'), input: $('chat-input'),
  send: $('chat-send'), stop: $('chat-stop'), clear: $('chat-clear'), log: $('chat-log'), stats: $('chat-stats'),
  note: $('chat-note')
}, api)

/** @type {import('./mesh-view.js').Known} */
const known = new Map()
/** @type {import('./mesh-view.js').ClusterState | undefined} */
let last
let lastOkAt = 0
/** @type {string[]} */
let servable = []
let modelsAt = -Infinity

/** @param {string} reason @returns {Promise<string | undefined>} */
function askKey (reason) {
  /** @type {HTMLDialogElement} */
  const dialog = $('key-dialog')
  $('key-reason').textContent = reason
  $('key-input').value = ''
  dialog.showModal()
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok' ? $('key-input').value.trim() : undefined)
    }, { once: true })
  })
}

/** @param {string | undefined} text @param {string} [kind] @param {HTMLElement} [action] */
function banner (text, kind = 'error', action) {
  const el = $('banner')
  el.hidden = text === undefined
  el.className = `banner ${kind}`
  el.dataset.kind = text === undefined ? '' : kind
  if (text !== undefined) render(el, text, action !== undefined && ' ', action)
  document.body.classList.toggle('stale', text !== undefined && kind === 'error')
}

async function poll () {
  const now = Date.now()
  try {
    const state = await api.json('/cluster/state', { signal: AbortSignal.timeout(STATE_TIMEOUT_MS) })
    last = state
    lastOkAt = now
    banner(undefined)
    draw(state, now)
    if (now - modelsAt >= MODELS_EVERY_MS) void refreshModels(now)
  } catch (err) {
    if (err instanceof UnauthorizedError) {
      banner('This node requires an API key.', 'error',
        h('button', { type: 'button', onclick: () => { void poll() } }, 'Enter API key'))
      return // wait for the button: do not reopen the dialog every second
    }
    const since = lastOkAt === 0 ? '' : ` Showing what it reported ${formatAgo(now - lastOkAt)}.`
    if (err instanceof HttpError) banner(`The node answered ${err.message}.${since} Retrying…`)
    else banner(`Cannot reach this node (${location.host}).${since} Retrying every second…`)
    if (last !== undefined) renderSummary(last, now)
  }
  setTimeout(() => { void poll() }, POLL_MS)
}

/** @param {number} now */
async function refreshModels (now) {
  modelsAt = now
  try {
    const body = await api.json('/v1/models', { signal: AbortSignal.timeout(STATE_TIMEOUT_MS) })
    const data = Array.isArray(body?.data) ? body.data : []
    servable = data.map((/** @type {{ id: unknown }} */ m) => String(m.id))
    chat.setModels(data)
  } catch (err) {
    if (err instanceof UnauthorizedError) chat.setModels([], 'an API key is needed')
    else chat.setModels([], err instanceof Error ? err.message : String(err))
  }
}

/** @param {import('./mesh-view.js').ClusterState} state @param {number} now */
function draw (state, now) {
  const nodes = trackMembers(known, state, now)
  renderTopology({ graph: $('topology'), list: $('members') }, nodes, state, now)
  renderPlan($('plan'), state, new Set(nodes.filter((n) => n.status === 'dead').map((n) => n.peerId)))
  renderModels($('models'), nodes, servable, state.downloads ?? [])
  renderSummary(state, now)
}

/** @param {import('./mesh-view.js').ClusterState} state @param {number} now */
function renderSummary (state, now) {
  const alive = state.members.filter((m) => m.state === 'alive').length
  const suspect = state.members.length - alive
  const dead = [...known.keys()].filter((id) => !state.members.some((m) => m.peerId === id)).length
  render($('summary'),
    h('span', {}, `on ${state.self.name}`), ' · ',
    h('span', { id: 'counts' }, `${alive} alive${suspect > 0 ? `, ${suspect} suspect` : ''}${dead > 0 ? `, ${dead} dead` : ''}`),
    ' · ', h('span', { title: state.viewHash }, `view ${shortId(state.viewHash)}`),
    ' · ', h('span', { id: 'updated' }, `updated ${formatAgo(now - lastOkAt)}`))
}

void poll()
