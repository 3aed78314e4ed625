/** qwen2: port of llama.cpp src/models/qwen2.cpp — the llama block with NEOX RoPE, Q/K/V biases, optional output bias. */
import { ROPE_MODE_NEOX } from '../native/ggml.js'
import { buildDecoderOutput } from './attention.js'
import { decoderTensors } from './decoder-tensors.js'
import { buildLlamaLayer } from './llama.js'
import type { ArchSpec } from './arch-spec.js'

export const qwen2: ArchSpec = {
  name: 'qwen2',
  tensors: (hp) => decoderTensors(hp, { outputBias: true }),
  // qwen2.cpp: no rope factors, kq_scale = 1/sqrt(head_dim) always
  buildLayer: (c, il, inpL) => buildLlamaLayer({ ...c, w: (n) => n === 'rope_freqs.weight' ? undefined : c.w(n) }, il, inpL, ROPE_MODE_NEOX, 1 / Math.sqrt(c.hp.headDim)),
  buildOutput: buildDecoderOutput
}
