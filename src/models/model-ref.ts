import { InvalidModelRefError } from '../shared/errors/pull-errors.js'

/**
 * What `exo-p2p pull MODEL` was asked for. PURE.
 * - `repo`: a Hub repository (`org/repo`), a quant to pick (`Q4_K_M`, case as typed) or none (llama.cpp's default order).
 * - `file`: one file of a repository at a revision, from a `…/ORG/REPO/resolve/REV/FILE.gguf` URL; `endpoint` is
 *   the URL's origin (plus any path prefix before ORG), so a mirror's URL downloads from that mirror.
 */
export type ModelRef =
  | { kind: 'repo', repo: string, revision: string, quant: string | undefined }
  | { kind: 'file', repo: string, revision: string, file: string, endpoint: string }

/** Hub repository names: `[A-Za-z0-9_.-]` parts, no leading/trailing `.`/`-`, no `--` or `..` (as the Hub validates). */
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?$/
const QUANT = /^[A-Za-z0-9_.-]{1,64}$/
const HF_HOSTS = /^(?:hf\.co|huggingface\.co|www\.huggingface\.co)\//i

function checkName (ref: string, part: string, what: string): void {
  if (!NAME.test(part) || part.includes('--') || part.includes('..')) throw new InvalidModelRefError(ref, `'${part}' is not a valid ${what} name`)
}

function parseRepo (ref: string, body: string): ModelRef {
  const colon = body.indexOf(':')
  const repoPart = colon < 0 ? body : body.slice(0, colon)
  const quant = colon < 0 ? undefined : body.slice(colon + 1)
  const parts = repoPart.split('/')
  if (parts.length !== 2) throw new InvalidModelRefError(ref, 'a Hub repository is org/repo')
  checkName(ref, parts[0]!, 'organisation')
  checkName(ref, parts[1]!, 'repository')
  if (quant !== undefined && !QUANT.test(quant)) throw new InvalidModelRefError(ref, `'${quant}' is not a quant tag`)
  return { kind: 'repo', repo: repoPart, revision: 'main', quant: quant === undefined || quant.toLowerCase() === 'latest' ? undefined : quant }
}

function parseUrl (ref: string): ModelRef {
  let url: URL
  try { url = new URL(ref) } catch { throw new InvalidModelRefError(ref, 'not a URL') }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new InvalidModelRefError(ref, `unsupported scheme ${url.protocol}`)
  const segs = url.pathname.split('/').filter((s) => s !== '')
  const at = segs.indexOf('resolve')
  if (at < 2 || segs.length < at + 3) throw new InvalidModelRefError(ref, 'a file URL is …/ORG/REPO/resolve/REV/FILE')
  const [org, name] = [segs[at - 2]!, segs[at - 1]!]
  checkName(ref, org, 'organisation')
  checkName(ref, name, 'repository')
  let revision: string
  let file: string
  try {
    revision = decodeURIComponent(segs[at + 1]!)
    file = segs.slice(at + 2).map((s) => decodeURIComponent(s)).join('/')
  } catch { throw new InvalidModelRefError(ref, 'bad percent-encoding') }
  if (!/\.gguf$/i.test(file)) throw new InvalidModelRefError(ref, 'the file is not a .gguf')
  if (file.split('/').some((s) => s === '..' || s === '.' || s === '')) throw new InvalidModelRefError(ref, 'bad file path')
  const prefix = segs.slice(0, at - 2).join('/')
  const endpoint = url.origin + (prefix === '' ? '' : `/${prefix}`)
  return { kind: 'file', repo: `${org}/${name}`, revision, file, endpoint }
}

/** Parses `org/repo[:QUANT]`, `hf.co/org/repo[:QUANT]` (also `huggingface.co/…`) or a `…/resolve/REV/FILE.gguf` URL. */
export function parseModelRef (ref: string): ModelRef {
  const s = ref.trim()
  if (s === '') throw new InvalidModelRefError(ref, 'empty')
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return parseUrl(s)
  return parseRepo(ref, s.replace(HF_HOSTS, ''))
}

/**
 * Whether `--model VALUE` means a Hub reference (`org/repo[:Q]`, `hf.co/…`, an http(s) URL) rather than a local
 * path or a model id. Anything ending in `.gguf` that is not a URL, and anything starting with `.`, `/` or `~`, is a path.
 */
export function isHubRef (value: string): boolean {
  const s = value.trim()
  if (/^https?:\/\//i.test(s)) return true
  if (/^[./~]/.test(s) || /\.gguf$/i.test(s)) return false
  try { parseModelRef(s); return true } catch { return false }
}

/** The canonical text of a reference (what progress and errors show). */
export function formatModelRef (ref: ModelRef): string {
  if (ref.kind === 'file') return `${ref.repo}@${ref.revision}/${ref.file}`
  return ref.quant === undefined ? ref.repo : `${ref.repo}:${ref.quant}`
}
