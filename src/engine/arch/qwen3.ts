/** qwen3: port of llama.cpp src/models/qwen3.cpp — the llama block with NEOX RoPE and per-head RMS norms of Q and K. */
import { ROPE_MODE_NEOX } from '../native/ggml.js'
import { buildDecoderOutput } from './attention.js'
import { decoderTensors } from './decoder-tensors.js'
import { buildLlamaLayer } from './llama.js'
import type { ArchSpec } from './arch-spec.js'

export const qwen3: ArchSpec = {
  name: 'qwen3',
  tensors: (hp) => decoderTensors(hp, { outputBias: false, qkNorm: true }),
  // qwen3.cpp: no rope factors, kq_scale = 1/sqrt(head_dim); the q/k norms are required tensors (see tensors())
  buildLayer: (c, il, inpL) => buildLlamaLayer({ ...c, w: (n) => n === 'rope_freqs.weight' ? undefined : c.w(n) }, il, inpL, ROPE_MODE_NEOX, 1 / Math.sqrt(c.hp.headDim)),
  buildOutput: buildDecoderOutput
}
