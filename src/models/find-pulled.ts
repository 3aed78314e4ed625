import { basename } from 'node:path'
import type { ModelRef } from './model-ref.js'
import type { ModelStore, StoredModel } from './model-store.js'

function escapeRegex (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * A model the store already holds for `ref`, without asking the Hub (so `start --model org/repo:Q` works
 * offline once pulled): pulled from the same repository, and for a quant a first file matching `QUANT[.-]`
 * (a file URL: the same file name).
 */
export async function findPulled (store: ModelStore, ref: ModelRef): Promise<StoredModel | undefined> {
  const models = await store.list()
  return models.find((m) => {
    if (m.meta === undefined || m.meta.repo !== ref.repo) return false
    const first = m.meta.files[0]?.name ?? ''
    if (ref.kind === 'file') return first === basename(ref.file)
    return ref.quant === undefined || new RegExp(`${escapeRegex(ref.quant)}[.-]`, 'i').test(first)
  })
}
