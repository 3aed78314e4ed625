/** gemma2 generator: the gemma block without Q/K norms (options: see gemma3.ts; attn_softcap / final_softcap default to llama.cpp's 50 / 30 when absent). */
import { gemmaMetadata, gemmaTensors } from './gemma3.js'
import type { ArchGenerator } from './types.js'

export const gemma2Gen: ArchGenerator = {
  name: 'gemma2',
  metadata: (o, a) => gemmaMetadata(o, a, true),
  // llama.cpp's gemma2 always uses token_embd as the output projection and refuses a file with an output.weight
  tensors: (o) => gemmaTensors({ ...o, tied: true }, false)
}
