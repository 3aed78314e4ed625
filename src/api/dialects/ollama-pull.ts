import { z } from 'zod'
import { modelField } from './common.js'
import type { PullEvent } from '../../shared/pull-events.js'

/** Ollama's `/api/pull` and `/api/delete` bodies (`model`, or the older `name`). */
export const pullBody = z.object({ model: modelField.optional(), name: modelField.optional(), stream: z.boolean().nullish(), insecure: z.boolean().nullish() })
export const deleteBody = z.object({ model: modelField.optional(), name: modelField.optional() })

/** Ollama's progress status of one blob: `pulling <first 12 hex of the digest>`. */
function layer (name: string, sha256: string | undefined): { status: string, digest: string } {
  const hex = sha256 ?? name
  return { status: `pulling ${hex.slice(0, 12)}`, digest: sha256 !== undefined ? `sha256:${sha256}` : name }
}

/**
 * A pull event as the NDJSON lines Ollama's own server sends (server/download.go, images.go): `pulling manifest`,
 * `pulling <digest>` with total / completed, `verifying sha256 digest`, `writing manifest`, `success`. PURE.
 */
export function ollamaPullLines (e: PullEvent): Array<Record<string, unknown>> {
  switch (e.type) {
    case 'resolving': return [{ status: 'pulling manifest' }]
    case 'file': return [{ ...layer(e.name, e.sha256), total: e.total, completed: e.completed }]
    case 'progress': return [{ ...layer(e.name, e.sha256), total: e.total, completed: e.completed }]
    case 'verifying': return [{ status: 'verifying sha256 digest' }]
    case 'done': return [{ status: 'writing manifest' }, { status: 'success' }]
    default: return []
  }
}
