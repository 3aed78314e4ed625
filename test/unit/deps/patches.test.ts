import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

const ROOT = new URL('../../../', import.meta.url).pathname

/**
 * patches/ holds fixes to pinned dependencies (applied by `patch-package` on install, see README).
 * Each must match the installed version and be applied: a version bump or an install that skipped
 * the postinstall step fails here instead of silently slowing every activation hop.
 */
test('every patch in patches/ is applied to the installed version it was made for', () => {
  const patches = readdirSync(join(ROOT, 'patches')).filter((f) => f.endsWith('.patch'))
  assert.ok(patches.length >= 2, 'the yamux and tcp patches exist')
  for (const file of patches) {
    // @scope+name+version.patch
    const m = /^(.+)\+(\d+\.\d+\.\d+)\.patch$/.exec(file)
    assert.ok(m !== null, `${file} is named <package>+<version>.patch`)
    const pkg = m[1]!.replace('+', '/')
    const installed = JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }
    assert.equal(installed.version, m[2], `${pkg}: the patch is for ${m[2]}, ${installed.version} is installed`)
    const text = readFileSync(join(ROOT, 'patches', file), 'utf8')
    for (const section of text.split(/^diff --git /m).slice(1)) {
      const target = /^a\/(\S+)/.exec(section)![1]!
      const added = section.split('\n').filter((l) => l.startsWith('+') && !l.startsWith('+++')).map((l) => l.slice(1))
      const content = readFileSync(join(ROOT, target), 'utf8')
      for (const line of added) assert.ok(content.includes(line), `${target} lacks the patched line ${JSON.stringify(line.trim())}`)
    }
  }
})
