// Topology panel: every node of the mesh as an SVG graph (name, backend, memory, layer range; links with RTT),
// plus a list of the same nodes that stays readable at phone width.
import { h, s, render } from './dom.js'
import { formatBytes, formatMs, formatRange, formatAgo, shortId, deviceText, devicesShort } from './format.js'
import { pairLinks, layerRangeOf, estimateUsedBytes, layoutNodes } from './mesh-view.js'

const BOX_W = 176
const BOX_H = 88
/** a node box grows by one line when any node has a GPU */
const GPU_LINE_H = 18

/**
 * @param {{ graph: SVGSVGElement, list: HTMLElement }} els
 * @param {import('./mesh-view.js').NodeView[]} nodes
 * @param {import('./mesh-view.js').ClusterState} state
 * @param {number} now
 */
export function renderTopology (els, nodes, state, now) {
  const gpuLine = nodes.some((n) => (n.member.devices ?? []).length > 0)
  const boxH = BOX_H + (gpuLine ? GPU_LINE_H : 0)
  const wide = nodes.length > 2
  const width = wide ? 700 : 480
  const height = (wide ? 200 + nodes.length * 40 : 170) + (gpuLine ? GPU_LINE_H : 0)
  els.graph.setAttribute('viewBox', `0 0 ${width} ${height}`)
  const pos = new Map(nodes.map((n, i) => [n.peerId, layoutNodes(nodes.length, width, height)[i] ?? { x: 0, y: 0 }]))
  const present = new Set(nodes.filter((n) => n.status !== 'dead').map((n) => n.peerId))
  const edges = pairLinks(state.links, present)

  const edgeEls = edges.map((e) => {
    const a = pos.get(e.a)
    const b = pos.get(e.b)
    if (a === undefined || b === undefined) return undefined
    // one number on the graph (mean of both directions); both directions in the tooltip
    const mean = e.rttBackMs === undefined ? e.rttMs : (e.rttMs + e.rttBackMs) / 2
    const both = e.rttBackMs === undefined ? formatMs(e.rttMs) : `${formatMs(e.rttMs)} one way, ${formatMs(e.rttBackMs)} the other`
    const mx = (a.x + b.x) / 2
    const my = (a.y + b.y) / 2
    return {
      line: s('g', { class: 'link', 'data-from': e.a, 'data-to': e.b },
        s('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y }),
        s('title', {}, `RTT between ${nameOf(nodes, e.a)} and ${nameOf(nodes, e.b)}: ${both}` +
          (e.bandwidthBytesPerSec > 0 ? ` · bandwidth ≈ ${formatBytes(e.bandwidthBytesPerSec)}/s` : ''))),
      // labels go on top of the node boxes so a crowded graph never hides a measurement
      label: s('text', { x: mx, y: my - 8, 'text-anchor': 'middle', class: 'rtt', 'data-from': e.a, 'data-to': e.b, 'data-rtt-ms': mean }, `RTT ${formatMs(mean)}`)
    }
  }).filter((e) => e !== undefined)

  const nodeEls = nodes.map((n) => {
    const p = pos.get(n.peerId) ?? { x: 0, y: 0 }
    const x = p.x - BOX_W / 2
    const y = p.y - boxH / 2
    const gpu = devicesShort(n.member.devices)
    const range = layerRangeOf(n.peerId, state, n.member)
    const caps = n.member.capabilities
    const used = estimateUsedBytes(n.member, state)
    const badge = n.status === 'dead' ? 'dead' : n.status === 'suspect' ? 'suspect' : n.isSelf ? 'this node' : ''
    return s('g', { class: `node ${n.status}${n.isSelf ? ' self' : ''}`, 'data-peer-id': n.peerId, 'data-status': n.status },
      s('rect', { x, y, width: BOX_W, height: boxH, rx: 8 }),
      s('text', { x: x + 10, y: y + 20, class: 'name' }, clip(n.name, 16)),
      badge !== '' && s('text', { x: x + BOX_W - 8, y: y + 20, 'text-anchor': 'end', class: 'badge' }, badge),
      s('text', { x: x + 10, y: y + 39 }, `${caps.backend} · ${caps.cpuCores} cores`),
      s('text', { x: x + 10, y: y + 57 }, used === undefined ? `mem budget ${formatBytes(caps.memoryBudgetBytes)}` : `mem ${formatBytes(used)} / ${formatBytes(caps.memoryBudgetBytes)}`),
      s('text', { x: x + 10, y: y + 75, class: 'layers' },
        range === undefined ? 'no layers' : `layers ${formatRange(range.start, range.end)}${range.ready ? '' : ' loading'}${range.gpuLayers > 0 ? ` · ${range.gpuLayers} on GPU` : ''}`),
      gpu !== undefined && s('text', { x: x + 10, y: y + 75 + GPU_LINE_H, class: 'gpu' }, gpu),
      n.status === 'dead' && s('line', { x1: x, y1: y, x2: x + BOX_W, y2: y + boxH, class: 'cross' }),
      s('title', {}, `${n.name} (${n.peerId}) · ${n.status}`))
  })
  render(els.graph, ...edgeEls.map((e) => e.line), ...nodeEls, ...edgeEls.map((e) => e.label))

  render(els.list, ...nodes.map((n) => {
    const caps = n.member.capabilities
    const range = layerRangeOf(n.peerId, state, n.member)
    const used = estimateUsedBytes(n.member, state)
    const status = n.status === 'dead'
      ? `dead · last seen ${formatAgo(now - n.lastSeenAt)}`
      : n.status === 'suspect' ? `suspect · last seen ${formatAgo(now - n.lastSeenAt)}` : 'alive'
    return h('li', { class: `member ${n.status}`, 'data-peer-id': n.peerId, 'data-status': n.status },
      h('div', { class: 'row' },
        h('strong', {}, n.name), n.isSelf && h('span', { class: 'tag' }, 'this node'),
        h('span', { class: `state ${n.status}` }, status)),
      h('div', { class: 'row dim' },
        `${caps.backend} · ${caps.cpuCores} cores · mem ${used === undefined ? 'none' : `≈ ${formatBytes(used)}`} used by shards / ${formatBytes(caps.memoryBudgetBytes)} budget · host ${formatBytes(caps.freeMemoryBytes)} free`),
      h('div', { class: 'row dim' },
        range === undefined ? 'no layers' : `layers ${formatRange(range.start, range.end)} (${range.source === 'plan' ? 'plan' : 'shard'}${range.ready ? ', ready' : ', loading'})`,
        n.member.rttMs !== undefined && ` · RTT from here ${formatMs(n.member.rttMs)}`,
        n.member.queueLength > 0 && ` · queue ${n.member.queueLength}`,
        ` · ${shortId(n.peerId)}`),
      ...(n.member.devices ?? []).map((d, i) => h('div', { class: 'row dim gpu', 'data-device': String(i) },
        `GPU ${deviceText(d)} · budget ${formatBytes(d.budgetBytes)}`,
        d.computeMsPerLayer > 0 ? ` · ${formatMs(d.computeMsPerLayer)}/layer` : ' · speed not measured')))
  }))
}

/** @param {import('./mesh-view.js').NodeView[]} nodes @param {string} peerId */
function nameOf (nodes, peerId) {
  return nodes.find((n) => n.peerId === peerId)?.name ?? shortId(peerId)
}

/** @param {string} text @param {number} n */
function clip (text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text
}
