/**
 * Transparent huge pages for large host buffers (Linux). llama.cpp maps a GGUF's weights with mmap; on a kernel
 * whose page cache holds large folios (ext4 / xfs on Linux ≥ 6.x) those pages come PMD-mapped (2 MiB), while
 * ggml's CPU buffers are plain anonymous memory that gets 4 KiB pages unless asked otherwise
 * (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise`). Streaming every weight once per token through
 * 4 KiB pages costs TLB misses the mmap'd side does not pay: decode of a Q8_0 model spent ~15% more time in the
 * same ggml_vec_dot_q8_0_q8_0 (measured: perf, this repository's scripts/bench-engine.ts model). So a buffer that
 * is about to be filled is advised MADV_HUGEPAGE first: its pages come as huge pages when they are first
 * touched. Advice only — memory contents, and so results, are unchanged; where it is refused nothing happens.
 */
import koffi from 'koffi'
import type { Ptr } from './ggml-lib.js'

const MADV_HUGEPAGE = 14
const PAGE = 4096n
const HUGE = 2n << 20n

type Madvise = (addr: Ptr, len: bigint, advice: number) => number
/** undefined: not looked up yet; null: not available */
let madvise: Madvise | null | undefined

function madviseFn (): Madvise | null {
  if (madvise !== undefined) return madvise
  madvise = null
  if (process.platform !== 'linux') return madvise
  try {
    madvise = koffi.load('libc.so.6').func('int madvise(void *addr, size_t len, int advice)') as unknown as Madvise
  } catch { /* no glibc (e.g. musl): no advice */ }
  return madvise
}

/**
 * Advises [base, base + bytes) of a host buffer not yet touched to be backed by huge pages, where the range
 * holds at least one whole 2 MiB page. Returns whether the kernel took the advice.
 */
export function adviseHugePages (base: Ptr, bytes: number): boolean {
  if (bytes < Number(HUGE) || base === 0n) return false
  const fn = madviseFn()
  if (fn === null) return false
  // madvise takes page-aligned ranges: the whole pages inside the buffer
  const start = (base + PAGE - 1n) / PAGE * PAGE
  const end = (base + BigInt(bytes)) / PAGE * PAGE
  if (end <= start) return false
  return fn(start, end - start, MADV_HUGEPAGE) === 0
}
