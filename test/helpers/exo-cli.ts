import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The `exo-p2p` entry point that tests spawn. `bin/exo-p2p.js` (what users run) transpiles through tsx's
 * module hooks, which cost a node process ~2 CPU-seconds more to start than plain JavaScript — per node, per
 * test, on CI's 2 cores. So tests run the same sources transpiled once by esbuild (tsx's own transpiler)
 * into a build keyed by the sources' content hash; the layout mirrors the repository, so every
 * import.meta.url-relative path (package.json, models/, the dashboard's static files) resolves as from src/.
 * EXO_P2P_TEST_TSX=1 runs the tests through bin/exo-p2p.js instead; test/model/run-cli.test.ts always does.
 */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

function tsFiles (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return tsFiles(p)
    return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : []
  }).sort()
}

function build (): string {
  const files = tsFiles(join(REPO_ROOT, 'src'))
  const hash = createHash('sha256').update('layout 2\0') // bumped when the build's layout changes
  for (const f of [...files, join(REPO_ROOT, 'tsconfig.json')]) hash.update(f).update('\0').update(readFileSync(f)).update('\0')
  const base = join(tmpdir(), 'exo-p2p-build')
  const out = join(base, hash.digest('hex').slice(0, 16))
  const entry = join(out, 'bin', 'exo-p2p.js')
  if (existsSync(entry)) return entry
  mkdirSync(base, { recursive: true })
  const tmp = `${out}.tmp-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  // esbuild's command line in a child that ends with the build: nothing of it lingers in the test process
  const esbuild = join(dirname(createRequire(import.meta.url).resolve('esbuild/package.json')), 'bin', 'esbuild')
  const r = spawnSync(esbuild, [...files, `--outdir=${join(tmp, 'src')}`, `--outbase=${join(REPO_ROOT, 'src')}`, `--tsconfig=${join(REPO_ROOT, 'tsconfig.json')}`,
    '--format=esm', '--platform=node', '--target=node20', '--sourcemap=inline', '--log-level=error'], { encoding: 'utf8', timeout: 120_000 })
  if (r.status !== 0) throw new Error(`esbuild failed (${r.error?.message ?? `exit ${String(r.status)}`}): ${r.stderr}`)
  mkdirSync(join(tmp, 'bin'))
  writeFileSync(join(tmp, 'bin', 'exo-p2p.js'), "process.setSourceMapsEnabled(true)\nawait import('../src/cli/cli.js')\n")
  // node_modules too: the build may sit outside the repository (TMPDIR=/tmp on CI), where no parent holds one
  for (const p of ['package.json', 'models', 'node_modules', 'src/api/dashboard/static']) {
    mkdirSync(dirname(join(tmp, p)), { recursive: true })
    symlinkSync(join(REPO_ROOT, p), join(tmp, p))
  }
  try { renameSync(tmp, out) } catch (err) {
    // another test process built the same sources first: use its build
    rmSync(tmp, { recursive: true, force: true })
    if (!existsSync(entry)) throw err
  }
  // builds of older sources go once nobody can still be running them (an hour)
  for (const old of readdirSync(base)) {
    const p = join(base, old)
    if (p !== out && Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { recursive: true, force: true })
  }
  return entry
}

let built: string | undefined

/** Absolute path of the entry point to run with `process.execPath`: built JavaScript, or bin/exo-p2p.js. */
export function exoCli (): string {
  if (process.env.EXO_P2P_TEST_TSX === '1') return join(REPO_ROOT, 'bin', 'exo-p2p.js')
  built ??= build()
  return built
}
