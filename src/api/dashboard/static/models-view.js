// Models panel: what each node holds on disk and which layers of which model it has loaded.
import { h, render } from './dom.js'
import { downloadText, formatBytes, formatRange } from './format.js'

/**
 * @param {HTMLElement} el
 * @param {import('./mesh-view.js').NodeView[]} nodes
 * @param {string[]} servable model ids this node's API lists (GET /v1/models)
 * @param {Array<{ ref: string, file?: string, completed: number, total: number, state: string }>} [downloads] this node's pulls
 */
export function renderModels (el, nodes, servable, downloads = []) {
  const ids = [...new Set([...servable, ...nodes.flatMap((n) => n.member.models.map((m) => m.id))])].sort()
  const pulls = downloads.length === 0
    ? false
    : h('ul', { class: 'downloads' }, ...downloads.map((d) => h('li', { class: d.state === 'failed' ? 'failed' : d.state === 'done' ? 'loaded' : 'loading', 'data-download': d.ref },
      downloadText(d), d.state === 'downloading' && h('progress', { max: String(Math.max(1, d.total)), value: String(d.completed) }))))
  if (ids.length === 0) {
    render(el, h('p', { class: 'empty' }, 'No node reports any model.'), pulls)
    return
  }
  const cols = nodes.filter((n) => n.status !== 'dead')
  render(el, pulls, h('div', { class: 'scroll' }, h('table', { class: 'models' },
    h('thead', {}, h('tr', {}, h('th', {}, 'model'), ...cols.map((n) => h('th', {}, n.name)))),
    h('tbody', {}, ...ids.map((id) => h('tr', { 'data-model': id },
      h('th', {}, id, servable.includes(id) && h('span', { class: 'tag' }, 'servable')),
      ...cols.map((n) => {
        const held = n.member.models.find((m) => m.id === id)
        const shards = n.member.shards.filter((sh) => sh.model === id)
        return h('td', {},
          held === undefined ? h('span', { class: 'dim' }, '—') : `on disk ${formatBytes(held.sizeBytes)}`,
          ...shards.map((sh) => h('div', { class: sh.ready ? 'loaded' : 'loading' },
            `${sh.ready ? 'loaded' : 'loading'} ${formatRange(sh.start, sh.end)}`)))
      })))))))
}
