/**
 * The split part headers llama.cpp's tools/gguf-split writes, made with the same gguf API calls it makes
 * (split_strategy: gguf_init_empty, gguf_set_kv into the first part, gguf_set_val_u16 split.no, split.count
 * placeholder, gguf_set_val_i32 split.tensors.count, gguf_add_tensor, then split.count again; the header is
 * gguf_get_meta_data = the only_meta write) through the pinned libggml-base. The reference for
 * scripts/split-gguf.ts, byte for byte.
 */
import { freeContext, ggml, newContext, newTensor } from '../../../src/engine/native/ggml.js'
import type { Ptr } from '../../../src/engine/native/ggml.js'
import type { GgufTensorInfo } from '../../../src/engine/gguf/gguf-reader.js'

/** Writes the header of each part (`groups[i]`: its tensors in order) to `outPaths[i]`. */
export function writeGgufSplitHeaders (input: string, groups: GgufTensorInfo[][], outPaths: string[]): void {
  const l = ggml()
  const src = l.gguf_init_from_file(input, { no_alloc: true, ctx: null }) as Ptr | null
  if (src === null || src === 0n) throw new Error(`gguf_init_from_file failed for ${input}`)
  const nTensors = groups.reduce((a, g) => a + g.length, 0)
  const tctx = newContext(nTensors + 1)
  const ctxs: Ptr[] = []
  try {
    groups.forEach((group, i) => {
      const ctx = l.gguf_init_empty() as Ptr
      ctxs.push(ctx)
      if (i === 0) l.gguf_set_kv(ctx, src)
      l.gguf_set_val_u16(ctx, 'split.no', i)
      l.gguf_set_val_u16(ctx, 'split.count', 0)
      l.gguf_set_val_i32(ctx, 'split.tensors.count', nTensors)
      for (const t of group) l.gguf_add_tensor(ctx, newTensor(tctx, t.type, t.ne, t.name))
    })
    ctxs.forEach((ctx, i) => {
      l.gguf_set_val_u16(ctx, 'split.count', groups.length)
      if (l.gguf_write_to_file(ctx, outPaths[i]!, true) !== true) throw new Error(`gguf_write_to_file failed for ${outPaths[i]}`)
    })
  } finally {
    for (const c of ctxs) l.gguf_free(c)
    l.gguf_free(src)
    freeContext(tctx)
  }
}
