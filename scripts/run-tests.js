#!/usr/bin/env node
// Runs the test suites: `node scripts/run-tests.js [suite...]` (default: every suite that can run here).
// Node 20's --test does not expand globs, so this collects test/<suite>/**/*.test.ts itself.
// Suites: unit, protocols (seconds, parallel) · model (two files at a time) · integration, lab, browser (real
// processes, one file at a time).
// lab needs root and `ip netns`; browser needs /usr/bin/chromium; each is skipped with a notice otherwise.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'

const ALL = ['unit', 'protocols', 'model', 'integration', 'lab', 'browser']
const SERIAL = new Set(['model', 'integration', 'lab', 'browser'])
// model files are deterministic logits comparisons on 1 ggml thread each, with no timing bounds: two at a
// time on two cores halves the suite. integration, lab and browser files assert time bounds and stay serial.
const CONCURRENCY = { model: Math.max(1, Math.min(2, availableParallelism())) }

function collect (dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return collect(p)
    return name.endsWith('.test.ts') ? [p] : []
  }).sort()
}

function unavailable (suite) {
  if (suite === 'lab') {
    if (process.getuid?.() !== 0) return 'not root'
    if (spawnSync('ip', ['netns', 'list']).status !== 0) return '`ip netns` unavailable'
  }
  if (suite === 'browser' && !existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium')) return 'no chromium'
  return undefined
}

const suites = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ALL
let failed = false
for (const suite of suites) {
  const files = collect(join('test', suite))
  if (files.length === 0) continue
  const why = unavailable(suite)
  if (why !== undefined) { console.log(`\n=== ${suite}: SKIPPED (${why})`); continue }
  console.log(`\n=== ${suite}: ${files.length} file(s)`)
  // --test-force-exit: a file whose before() hook failed must not hang on the node processes it started
  const args = ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-force-exit']
  if (SERIAL.has(suite)) args.push(`--test-concurrency=${CONCURRENCY[suite] ?? 1}`)
  const r = spawnSync(process.execPath, [...args, ...files], { stdio: 'inherit' })
  if (r.status !== 0) { failed = true; console.log(`=== ${suite}: FAILED`) }
}
process.exit(failed ? 1 : 0)
