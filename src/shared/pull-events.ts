/**
 * What a model pull reports while it runs (src/models emits them; the CLI draws bars or JSON lines, the
 * Ollama route streams them in Ollama's shape). Byte counts are of one file.
 */
export type PullEvent =
  /** listing the repository and choosing its files */
  | { type: 'resolving', ref: string }
  /** the files of the model are known */
  | { type: 'resolved', id: string, repo: string, revision: string, commit: string | undefined, files: PullFileInfo[] }
  /** one file starts: `source` says whether it is downloaded, linked from the HF cache, or already in the store */
  | { type: 'file', name: string, sha256: string | undefined, total: number, completed: number, source: 'download' | 'hf-cache' | 'store' }
  /** bytes of one file on disk so far (resumed bytes included) */
  | { type: 'progress', name: string, sha256: string | undefined, completed: number, total: number }
  /** all bytes are there; checking the sha256 */
  | { type: 'verifying', name: string }
  /** one file is in place under its final name */
  | { type: 'file-done', name: string, receivedBytes: number }
  /** the model is in the store */
  | { type: 'done', id: string, paths: string[] }

export interface PullFileInfo { name: string, size: number, sha256: string | undefined }

/** A model store the HTTP API can drive (Ollama `POST /api/pull`, `DELETE /api/delete`). */
export interface ModelPuller {
  /** pulls a Hub reference into the store; resolves with the model id */
  pull: (ref: string, options: { signal: AbortSignal, onEvent: (e: PullEvent) => void }) => Promise<{ id: string }>
  /** deletes a stored model by id; throws `StoredModelNotFoundError` when the store lacks it */
  remove: (id: string, options: { signal: AbortSignal }) => Promise<void>
}
