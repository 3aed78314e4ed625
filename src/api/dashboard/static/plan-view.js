// Plan panel: the agreed plan (stages in pipeline order with layer ranges, predicted vs measured ms/token,
// ready or loading with progress), or the reason no plan fits.
import { h, render } from './dom.js'
import { formatBytes, formatMs, formatRange, shortId } from './format.js'

/**
 * @param {HTMLElement} el
 * @param {import('./mesh-view.js').ClusterState} state
 * @param {Set<string>} deadPeers
 */
export function renderPlan (el, state, deadPeers) {
  const plan = state.plan
  if (plan === undefined) {
    render(el, h('p', { class: 'empty', 'data-plan': 'absent' }, 'This node reports no plan yet (the planner is not running on it).'))
    return
  }
  if (plan === null) {
    render(el, h('p', { class: 'warn', 'data-plan': 'none' },
      h('strong', {}, 'No plan fits. '), state.planReason ?? 'The node gave no reason.'))
    return
  }
  const nLayers = Math.max(1, ...plan.stages.map((st) => st.end))
  const loading = plan.stages.filter((st) => !st.ready)
  const status = plan.ready
    ? h('span', { class: 'state alive' }, 'ready')
    : h('span', { class: 'state suspect' }, loading.length > 0 ? `loading ${loading.length} of ${plan.stages.length} stages` : 'not ready')
  render(el,
    h('div', { class: 'row', 'data-plan': plan.id },
      h('strong', {}, plan.model), ' ', status,
      h('span', { class: 'dim', title: plan.id }, ` plan ${shortId(plan.id)}`)),
    h('div', { class: 'row' },
      'predicted ', h('strong', { class: 'predicted' }, `${formatMs(plan.predictedMsPerToken)}/token`),
      ' · measured ', h('strong', { class: 'measured' },
        plan.measuredMsPerToken === undefined ? 'not yet' : `${formatMs(plan.measuredMsPerToken)}/token`)),
    h('div', { class: 'layerbar', 'aria-hidden': 'true' },
      ...plan.stages.map((st, i) => h('span', {
        class: `seg c${i % 6}${st.ready ? '' : ' loading'}`,
        style: `flex-grow:${st.end - st.start}`,
        title: `${st.name} ${formatRange(st.start, st.end)}`
      }, formatRange(st.start, st.end)))),
    h('ol', { class: 'stages' }, ...plan.stages.map((st, i) => {
      const dead = deadPeers.has(st.peerId)
      return h('li', { class: `stage${dead ? ' dead' : ''}`, 'data-peer-id': st.peerId },
        h('span', { class: `dot c${i % 6}` }),
        h('strong', {}, st.name), ` layers ${formatRange(st.start, st.end)} `,
        h('span', { class: 'dim' }, `${st.end - st.start} of ${nLayers}`),
        (st.gpuLayers ?? 0) > 0 && h('span', { class: 'gpu' }, ` · ${st.gpuLayers} on GPU (${formatBytes(st.deviceBytes)})`),
        st.predictedMs !== undefined && h('span', { class: 'dim' }, ` · predicted ${formatMs(st.predictedMs)}`),
        ' · ',
        dead
          ? h('span', { class: 'state dead' }, 'node dead')
          : st.ready
            ? h('span', { class: 'state alive' }, 'ready')
            : h('span', { class: 'loadwrap' }, 'loading ',
              h('progress', { max: 1, value: st.loadProgress ?? 0 }),
              ` ${Math.round((st.loadProgress ?? 0) * 100)}%`))
    })))
}
