// GET / serves the dashboard page, and every module it imports is served with a JavaScript MIME type.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { createHttpApp } from '../../../src/api/app.js'
import { DASHBOARD_STATIC_DIR } from '../../../src/api/dashboard.js'
import type { InferenceService } from '../../../src/shared/inference.js'

const inference: InferenceService = {
  async * generate () {},
  async countTokens () { return 0 },
  async listModels () { return [] }
}

test('the dashboard is served at / and its modules under /dashboard/, even with an API key set', async () => {
  const app = createHttpApp({
    inference,
    clusterState: () => { throw new Error('not used') },
    metrics: () => '',
    apiKey: 'secret',
    version: 'test'
  })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  try {
    const page = await fetch(`${base}/`)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /text\/html/)
    const html = await page.text()
    assert.match(html, /<script type="module" src="\/dashboard\/main\.js">/)

    const files = readdirSync(DASHBOARD_STATIC_DIR).filter((f) => f.endsWith('.js'))
    assert.ok(files.includes('main.js'))
    for (const f of files) {
      const res = await fetch(`${base}/dashboard/${f}`)
      assert.equal(res.status, 200, f)
      assert.match(res.headers.get('content-type') ?? '', /javascript/, f)
      // every relative import of a module resolves to a file that exists
      for (const [, dep] of (await res.text()).matchAll(/from '\.\/([\w-]+\.js)'/g)) assert.ok(files.includes(dep!), `${f} imports ${dep}`)
    }
    const css = await fetch(`${base}/dashboard/style.css`)
    assert.match(css.headers.get('content-type') ?? '', /text\/css/)
    // fetch normalises the path to /app.ts: outside the dashboard, so the key guard answers first
    assert.equal((await fetch(`${base}/dashboard/../../app.ts`)).status, 401)
    assert.equal((await fetch(`${base}/dashboard/nope.js`)).status, 404)
  } finally {
    server.close()
  }
})
