// The dashboard in a real browser (Debian chromium, headless) against a real 2-node mesh on 127.0.0.1.
// Screenshots of each state go to test-artifacts/dashboard/.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { resolve } from 'node:path'
import type { Page } from 'playwright-core'
import { launchBrowser, screenshot } from './helpers/browser.js'
import type { BrowserHandle } from './helpers/browser.js'
import { startNode, waitFor } from './helpers/nodes.js'
import type { NodeProc } from './helpers/nodes.js'
import type { ClusterStateJson } from '../../src/shared/cluster-state.js'

const MODEL = resolve('models/stories260k-f32.gguf')
/** protocols/membership.md: a node that dies without `leave` leaves every view within 5.25 s */
const FAILURE_DETECTION_MS = 5250
/** the page polls /cluster/state every second; plus a request in flight and a render */
const PAGE_LAG_MS = 2000

describe('dashboard on a 2-node mesh', { timeout: 240_000 }, () => {
  let a: NodeProc
  let b: NodeProc
  let browser: BrowserHandle
  let page: Page
  const shots: string[] = []
  const pageErrors: string[] = []

  before(async () => {
    a = await startNode({ name: 'alpha', models: [MODEL] })
    const selfA = (await a.state()).self
    const addr = selfA.addresses.find((x) => x.includes('/127.0.0.1/')) ?? selfA.addresses[0]
    assert.ok(addr !== undefined, 'node alpha reports no address')
    b = await startNode({ name: 'beta', models: [MODEL], peers: [addr.includes('/p2p/') ? addr : `${addr}/p2p/${selfA.peerId}`] })
    await waitFor('alpha to see beta and a link between them', async () => {
      const st = await a.state()
      return st.members.length === 2 && st.links.length > 0 ? st : undefined
    }, 30_000)
    browser = await launchBrowser({ width: 1200, height: 900 })
    page = browser.page
    page.on('pageerror', (err) => { pageErrors.push(err.message) })
  })

  after(async () => {
    await browser?.close()
    await Promise.all([a?.stop(), b?.stop()])
    if (shots.length > 0) process.stderr.write(`screenshots:\n  ${shots.join('\n  ')}\n`)
  })

  test('the page shows both nodes and the link between them with its RTT', async () => {
    await page.goto(`${a.httpUrl}/`)
    const st = await a.state()
    for (const m of st.members) {
      const node = page.locator(`#topology .node[data-peer-id="${m.peerId}"]`)
      await node.waitFor({ timeout: 5000 })
      assert.equal(await node.getAttribute('data-status'), 'alive')
      assert.match(await node.textContent() ?? '', new RegExp(m.name))
      assert.match(await node.textContent() ?? '', new RegExp(m.capabilities.backend))
    }
    const [p, q] = [st.members[0]!.peerId, st.members[1]!.peerId].sort()
    const rtt = page.locator(`#topology text.rtt[data-from="${p}"][data-to="${q}"]`)
    await rtt.waitFor({ timeout: 5000 })
    assert.match(await rtt.textContent() ?? '', /RTT \d+(\.\d+)? ms/)
    assert.equal(await page.locator('#members li.member').count(), 2)
    shots.push(await screenshot(page, '1-mesh'))
  })

  test('the plan panel shows the agreed plan with its layer ranges', async () => {
    // both nodes hold the bundled model, so the mesh must agree on a plan that serves it
    const plan = await waitFor('a plan', async () => (await a.state()).plan ?? undefined, 30_000)
    assert.ok(plan.stages.length >= 1)
    await page.locator(`#plan [data-plan="${plan.id}"]`).waitFor({ timeout: 5000 })
    const items = page.locator('#plan ol.stages li')
    assert.equal(await items.count(), plan.stages.length)
    for (const [i, st2] of plan.stages.entries()) {
      assert.match(await items.nth(i).textContent() ?? '', new RegExp(`${st2.name}.*layers \\[${st2.start}, ${st2.end}\\)`))
      const box = await page.locator(`#topology .node[data-peer-id="${st2.peerId}"] .layers`).textContent()
      assert.match(box ?? '', new RegExp(`\\[${st2.start}, ${st2.end}\\)`))
    }
    shots.push(await screenshot(page, '2-plan'))
  })

  /** Model ids GET /v1/models lists, or undefined when the API routes are not there. */
  async function servableModels (): Promise<string[] | undefined> {
    const res = await fetch(`${a.httpUrl}/v1/models`).catch(() => undefined)
    if (res === undefined || !res.ok) return undefined
    const body = await res.json() as { data?: Array<{ id: string }> }
    return body.data?.map((m) => m.id)
  }

  async function sendPrompt (text: string, maxTokens: number): Promise<void> {
    // 'auto': the page must itself pick /v1/completions, the test model having no chat template
    await page.selectOption('#chat-mode', 'auto')
    await page.fill('#chat-max', String(maxTokens))
    await page.fill('#chat-input', text)
    await page.click('#chat-send')
  }

  test('a chat message gets a streamed reply with live tokens/s', async () => {
    const models = await servableModels()
    assert.ok(models !== undefined && models.includes('stories260k-f32'), `GET /v1/models lists ${String(models)}`)
    await page.locator(`#chat-model option[value="${models[0]}"]`).waitFor({ state: 'attached', timeout: 8000 })
    await sendPrompt('Once upon a time', 40)
    const reply = page.locator('#chat-log .msg.assistant').last()
    await waitFor('the reply to finish', async () => (await reply.getAttribute('data-state')) === 'done' ? true : undefined, 60_000)
    const text = await reply.locator('.text').textContent() ?? ''
    assert.ok(text.trim().length > 0, 'empty reply')
    assert.ok(Number(await reply.getAttribute('data-chunks')) > 1, 'the reply did not arrive as a stream of events')
    const stats = await page.locator('#chat-stats').textContent() ?? ''
    const m = /(\d+) tokens/.exec(stats)
    assert.ok(m !== null && Number(m[1]) > 1 && Number(m[1]) <= 40, stats)
    assert.match(stats, /\d+(\.\d+)? tok\/s/)
    assert.match(stats, /\/v1\/completions/, 'a model without a chat template must go to /v1/completions')
    shots.push(await screenshot(page, '3-chat'))
  })

  /** The node's own count of cancelled requests (exo_p2p_requests_cancelled_total in /metrics). */
  async function cancelledMetric (node: NodeProc): Promise<number> {
    const text = await (await fetch(`${node.httpUrl}/metrics`)).text()
    const m = /^exo_p2p_requests_cancelled_total\s+(\d+)$/m.exec(text)
    assert.ok(m !== null, 'GET /metrics has no exo_p2p_requests_cancelled_total')
    return Number(m[1])
  }

  test('Stop aborts the stream mid-reply and the node reports the request cancelled', async () => {
    const before = await cancelledMetric(a)
    const maxTokens = 2000 // stories260k: context 2048; the stream must still be running when Stop lands
    await sendPrompt('Once upon a time', maxTokens)
    const reply = page.locator('#chat-log .msg.assistant').last()
    await waitFor('the first tokens', async () => Number(await reply.getAttribute('data-chunks') ?? 0) >= 1 ? true : undefined, 30_000, 20)
    await page.click('#chat-stop')
    await waitFor('the reply to be marked stopped', async () => (await reply.getAttribute('data-state')) === 'stopped' ? true : undefined, 5000)
    const got = Number(await reply.getAttribute('data-chunks'))
    assert.ok(got < maxTokens, `all ${got} tokens arrived before Stop took effect`)
    assert.match(await page.locator('#chat-stats').textContent() ?? '', /stopped/)
    shots.push(await screenshot(page, '4-chat-stopped'))
    // the node side: its cancel counter goes up (the API aborted the generation when the client went away)
    const now = await waitFor('the node to count the request cancelled', async () => {
      const n = await cancelledMetric(a)
      return n > before ? n : undefined
    }, 8000).catch((err: unknown) => { throw new Error(`${String(err)}\nnode log tail:\n${a.log().slice(-2000)}`) })
    process.stderr.write(`cancelled requests on the node: ${before} → ${now}\n`)
  })

  test('usable at phone width (390 px): no horizontal scrolling, every panel shown', async () => {
    const phone = await browser.browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true })
    try {
      await phone.goto(`${a.httpUrl}/`)
      await phone.locator('#topology .node').first().waitFor({ timeout: 5000 })
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
      assert.ok(overflow <= 0, `page is ${overflow} px wider than the screen`)
      for (const id of ['#topology', '#plan', '#models', '#chat-input', '#chat-send']) assert.ok(await phone.locator(id).isVisible(), id)
      const send = await phone.locator('#chat-send').boundingBox()
      assert.ok(send !== null && send.x + send.width <= 390, 'Send button is off screen')
      shots.push(await screenshot(phone, '5-phone'))
    } finally {
      await phone.close()
    }
  })

  test('GPUs and their memory are shown for each node, and the GPU layers of each stage', async () => {
    // no GPU here: the page's /cluster/state is rewritten in flight to give beta a device and its stage 2 GPU layers
    const gpuPage = await browser.browser.newPage({ viewport: { width: 1200, height: 900 } })
    const peerB = (await b.state()).self.peerId
    const device = { backend: 'cuda' as const, name: 'NVIDIA H200', totalBytes: 150e9, freeBytes: 100e9, budgetBytes: 139e9, computeMsPerLayer: 0.05 }
    try {
      await gpuPage.route('**/cluster/state', async (route) => {
        const res = await route.fetch()
        const st = await res.json() as ClusterStateJson
        for (const m of st.members) if (m.peerId === peerB) m.devices = [device]
        for (const stage of st.plan?.stages ?? []) if (stage.peerId === peerB) Object.assign(stage, { gpuLayers: 2, deviceBytes: 3e9 })
        await route.fulfill({ response: res, json: st })
      })
      await gpuPage.goto(`${a.httpUrl}/`)
      const box = gpuPage.locator(`#topology .node[data-peer-id="${peerB}"] .gpu`)
      await box.waitFor({ timeout: 5000 })
      assert.equal(await box.textContent(), 'GPU: NVIDIA H200 150 GB')
      assert.equal(await gpuPage.locator(`#members li[data-peer-id="${peerB}"] .gpu`).textContent(), 'GPU cuda NVIDIA H200 · 100 GB free of 150 GB · budget 139 GB · 0.05 ms/layer')
      assert.equal(await gpuPage.locator('#members .gpu').count(), 1, 'alpha has no GPU')
      if ((await b.state()).plan?.stages.some((x) => x.peerId === peerB) === true) {
        assert.match(await gpuPage.locator(`#plan li[data-peer-id="${peerB}"]`).textContent() ?? '', /2 on GPU \(3\.0 GB\)/)
      }
      shots.push(await screenshot(gpuPage, '5b-gpu'))
    } finally {
      await gpuPage.close()
    }
  })

  test('killing a node turns it dead in the page within the failure-detection bound', async () => {
    const peerB = (await b.state()).self.peerId
    const node = page.locator(`#topology .node[data-peer-id="${peerB}"]`)
    assert.equal(await node.getAttribute('data-status'), 'alive')
    const killedAt = Date.now()
    await b.kill()
    let suspectAt: number | undefined
    await waitFor('beta to be shown dead', async () => {
      const status = await node.getAttribute('data-status')
      if (status === 'suspect' && suspectAt === undefined) {
        suspectAt = Date.now() - killedAt
        shots.push(await screenshot(page, '6a-node-suspect'))
      }
      return status === 'dead' ? true : undefined
    }, FAILURE_DETECTION_MS + PAGE_LAG_MS + 3000, 100)
    // suspect is a 2 s window (3–5 s without announcement): the 1 s poll usually, not always, lands in it
    process.stderr.write(`beta shown suspect: ${suspectAt === undefined ? 'not observed' : `${suspectAt} ms after SIGKILL`}\n`)
    const took = Date.now() - killedAt
    process.stderr.write(`beta shown dead ${took} ms after SIGKILL (bound ${FAILURE_DETECTION_MS} + page ${PAGE_LAG_MS})\n`)
    assert.ok(took <= FAILURE_DETECTION_MS + PAGE_LAG_MS, `took ${took} ms`)
    assert.equal(await page.locator(`#members li[data-peer-id="${peerB}"]`).getAttribute('data-status'), 'dead')
    assert.match(await page.locator('#counts').textContent() ?? '', /1 dead/)
    shots.push(await screenshot(page, '6-node-dead'))
  })

  test('a clear banner when the node serving the page is unreachable', async () => {
    await a.kill()
    const banner = page.locator('#banner')
    await banner.waitFor({ state: 'visible', timeout: 6000 })
    assert.match(await banner.textContent() ?? '', /cannot reach this node/i)
    shots.push(await screenshot(page, '7-unreachable'))
    assert.deepEqual(pageErrors, [], 'uncaught errors in the page')
  })
})
