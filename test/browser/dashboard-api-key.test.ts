// The dashboard on a node started with --api-key: asks for the key once, keeps it in localStorage, sends it.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { launchBrowser, screenshot } from './helpers/browser.js'
import type { BrowserHandle } from './helpers/browser.js'
import { startNode } from './helpers/nodes.js'
import type { NodeProc } from './helpers/nodes.js'

const KEY = 'dash-test-key-7f3a'

describe('dashboard with an API key', {
  timeout: 120_000
}, () => {
  let node: NodeProc
  let browser: BrowserHandle

  before(async () => {
    node = await startNode({ name: 'keyed', apiKey: KEY })
    browser = await launchBrowser({ width: 900, height: 800 })
  })
  after(async () => {
    await browser?.close()
    await node?.stop()
  })

  test('asks once on 401, stores the key, sends it, does not ask again after a reload', async () => {
    const page = browser.page
    const asked: string[] = []
    page.on('request', (r) => { if (r.url().includes('/v1/')) asked.push(r.headers().authorization ?? '') })
    await page.goto(`${node.httpUrl}/`)
    await page.locator('#key-dialog[open]').waitFor({ timeout: 8000 })
    await screenshot(page, '8-api-key-dialog')
    await page.fill('#key-input', KEY)
    await page.click('#key-ok')
    await page.waitForFunction(() => document.querySelector('#key-dialog[open]') === null)
    assert.equal(await page.evaluate(() => localStorage.getItem('exo-p2p.apiKey')), KEY)
    await page.waitForTimeout(1500)
    assert.ok(asked.includes(`Bearer ${KEY}`), 'the key was never sent')
    await page.reload()
    await page.locator('#topology .node').first().waitFor({ timeout: 8000 })
    await page.waitForTimeout(6000) // past one /v1/models refresh
    assert.equal(await page.locator('#key-dialog[open]').count(), 0, 'asked again after a reload')
    await screenshot(page, '8-api-key-accepted')
  })
})
