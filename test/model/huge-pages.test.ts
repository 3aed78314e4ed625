/**
 * A shard's weights sit on transparent huge pages where the kernel offers them (native/huge-pages.ts): llama.cpp's
 * mmap'd weights come PMD-mapped from the page cache, and 4 KiB pages cost our decode ~15% in the same kernels.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { loadShard, readModelMetadata } from '../../src/engine/index.js'
import { generatedModel } from './helpers/generated-models.js'

/** the kernel's THP mode ('always' | 'madvise' | 'never'), undefined where there is none */
function thpMode (): string | undefined {
  try { return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] } catch { return undefined }
}

/** AnonHugePages of this process, bytes */
function anonHuge (): number {
  const m = /AnonHugePages:\s+(\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))
  return Number(m?.[1] ?? 0) * 1024
}

describe('weights on huge pages', () => {
  const mode = thpMode()
  it('a loaded shard holds most of its weight bytes in anonymous huge pages', { skip: mode === undefined || mode === 'never' ? `transparent huge pages: ${mode ?? 'none'}` : false }, async () => {
    // default shape, f32: ~66 MB of weights (two 32000 × 256 embeddings), shared with other tests' cache
    const path = generatedModel('f32')
    const before = anonHuge()
    const shard = await loadShard({ modelPath: path, range: { start: 0, end: readModelMetadata(path).nLayers }, threads: 1 })
    try {
      const grown = anonHuge() - before
      // every whole 2 MiB page inside each buffer is advised; half of them leaves room for a fragmented machine
      // where direct compaction (defrag 'madvise') cannot find them all, and still fails when none are used
      assert.ok(grown >= 0.5 * shard.weightBytes, `huge pages grew by ${grown} bytes for ${shard.weightBytes} bytes of weights (THP mode ${mode})`)
    } finally {
      await shard.dispose()
    }
  })
})
