// Launches Debian chromium headless through playwright-core with a fresh profile; screenshots go to test-artifacts/.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import type { Browser, BrowserContext, Page } from 'playwright-core'

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const ARTIFACTS_DIR = join(process.cwd(), 'test-artifacts', 'dashboard')

export interface BrowserHandle {
  browser: Browser
  context: BrowserContext
  page: Page
  close: () => Promise<void>
}

export async function launchBrowser (viewport = { width: 1200, height: 900 }): Promise<BrowserHandle> {
  // launch() gives every browser a fresh temporary profile (user-data dir), removed on close
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync']
  })
  const context = await browser.newContext({ viewport })
  const page = await context.newPage()
  return {
    browser,
    context,
    page,
    close: async () => {
      await browser.close().catch(() => {})
    }
  }
}

/** Saves a full-page screenshot as test-artifacts/dashboard/<name>.png and returns its path. */
export async function screenshot (page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true })
  const path = join(ARTIFACTS_DIR, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}
