import { ExoError } from './exo-error.js'

/** A model reference that is neither `org/repo[:QUANT]`, `hf.co/org/repo[:QUANT]` nor a `…/resolve/REV/FILE.gguf` URL. */
export class InvalidModelRefError extends ExoError {
  readonly code = 'MODEL_REF_INVALID'
  constructor (ref: string, why: string) {
    super(`'${ref}' is not a model reference (${why}); expected org/repo[:QUANT], hf.co/org/repo[:QUANT] or https://huggingface.co/ORG/REPO/resolve/REV/FILE.gguf`)
  }
}

/** The Hub has no such repository (or revision, or file). HTTP 404. */
export class HubRepoNotFoundError extends ExoError {
  readonly code = 'HUB_MODEL_NOT_FOUND'
  constructor (readonly repo: string, what: string) {
    super(`${what} not found on the Hub (repository ${repo})`)
  }
}

/** 401/403 from the Hub: a gated or private repository, no token or a token without access. */
export class HubAuthError extends ExoError {
  readonly code = 'HUB_AUTH_REQUIRED'
  constructor (readonly repo: string, status: number, hadToken: boolean) {
    super(hadToken
      ? `repository ${repo} refused the token in HF_TOKEN (HTTP ${status}): the token has no access to this gated or private repository (accept its terms on the Hub, or use a token that can read it)`
      : `repository ${repo} is gated or private (HTTP ${status}): set HF_TOKEN to a Hugging Face access token that can read it`)
  }
}

/** Any other unexpected answer of the Hub or its CDN. */
export class HubHttpError extends ExoError {
  readonly code = 'HUB_HTTP_ERROR'
  constructor (readonly url: string, readonly status: number, detail = '') {
    super(`${url} answered HTTP ${status}${detail !== '' ? `: ${detail}` : ''}`)
  }
}

/** The Hub (HF_ENDPOINT) cannot be reached: DNS, refused or reset connections, TLS. */
export class HubUnreachableError extends ExoError {
  readonly code = 'HUB_UNREACHABLE'
  constructor (readonly url: string, cause: unknown) {
    const c = (cause as { cause?: { code?: string, message?: string } } | undefined)?.cause
    super(`cannot reach ${new URL(url).origin} (${c?.code ?? c?.message ?? (cause as Error | undefined)?.message ?? 'network error'}); check the network or HF_ENDPOINT`, { cause })
  }
}

/** The repository has GGUF files, but none for the requested quant. The message lists the quants it has. */
export class QuantNotFoundError extends ExoError {
  readonly code = 'HUB_QUANT_NOT_FOUND'
  constructor (readonly repo: string, readonly quant: string, readonly available: string[]) {
    super(`repository ${repo} has no GGUF for quant ${quant}; it has: ${available.length === 0 ? '(none)' : available.join(', ')}`)
  }
}

/** The repository holds no model GGUF at all (only other files, or only mmproj / imatrix files). */
export class NoGgufInRepoError extends ExoError {
  readonly code = 'HUB_NO_GGUF'
  constructor (readonly repo: string, files: string[]) {
    super(`repository ${repo} holds no model GGUF file (files: ${files.slice(0, 20).join(', ') || '(none)'}${files.length > 20 ? ', …' : ''})`)
  }
}

/** The downloaded bytes do not hash to the sha256 the Hub published. Nothing is kept under the final name. */
export class ChecksumMismatchError extends ExoError {
  readonly code = 'DOWNLOAD_CHECKSUM_MISMATCH'
  constructor (readonly file: string, readonly expected: string, readonly actual: string) {
    super(`${file}: sha256 of the download is ${actual}, the Hub says ${expected}; the corrupted download was deleted, pull again`)
  }
}

/** The server delivered a different number of bytes than it announced. */
export class DownloadSizeError extends ExoError {
  readonly code = 'DOWNLOAD_SIZE_MISMATCH'
  constructor (readonly file: string, detail: string) {
    super(`${file}: ${detail}`)
  }
}

/** Not enough free space for the download (checked before downloading). */
export class DiskSpaceError extends ExoError {
  readonly code = 'DOWNLOAD_DISK_FULL'
  constructor (readonly dir: string, readonly neededBytes: number, readonly freeBytes: number) {
    super(`not enough disk space in ${dir}: the download needs ${formatMiB(neededBytes)} more, ${formatMiB(freeBytes)} free`)
  }
}

/** A download stalled or kept failing after its retries. */
export class DownloadFailedError extends ExoError {
  readonly code = 'DOWNLOAD_FAILED'
  constructor (readonly file: string, detail: string, options?: { cause?: unknown }) {
    super(`${file}: download failed: ${detail}; run the pull again to resume`, options)
  }
}

/** Another pull (this process or another, e.g. a node's /api/pull and `exo-p2p pull`) is downloading this file. */
export class DownloadInProgressError extends ExoError {
  readonly code = 'DOWNLOAD_IN_PROGRESS'
  constructor (readonly file: string, readonly pid: number) {
    super(`${file} is being downloaded by another pull (process ${pid}); wait for it to finish`)
  }
}

/** A model file named on the command line (`--model PATH`) does not exist. */
export class ModelFileNotFoundError extends ExoError {
  readonly code = 'MODEL_FILE_NOT_FOUND'
  constructor (readonly path: string) {
    super(`model file ${path} does not exist`)
  }
}

/** `rm ID` / `DELETE /api/delete` of a model the store does not hold. HTTP 404. */
export class StoredModelNotFoundError extends ExoError {
  readonly code = 'STORED_MODEL_NOT_FOUND'
  constructor (readonly id: string, known: string[]) {
    super(`model '${id}' is not in the model store; it holds: ${known.length === 0 ? '(no models)' : known.join(', ')}`)
  }
}

/** A different model already has this file name in the store. */
export class StoredModelConflictError extends ExoError {
  readonly code = 'STORED_MODEL_CONFLICT'
  constructor (readonly id: string, detail: string) {
    super(`model '${id}' already exists in the store with other contents (${detail}); remove it first with \`exo-p2p rm ${id}\``)
  }
}

function formatMiB (n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`
}
