/**
 * gemma2: port of llama.cpp src/models/gemma2.cpp — the gemma block of gemma3.ts without Q/K norms, with
 * attention logit soft-capping (attn_logit_softcapping, default 50) and final logit soft-capping
 * (final_logit_softcapping, default 30, always applied). Every other layer slides (pattern 2, window default 4096);
 * sliding-window layers use rope.freq_base_swa (default: the global base) and the global scale. The output
 * projection is always token_embd (llama.cpp ignores output.weight).
 */
import { denseDecoderHParams } from './dense-hparams.js'
import { buildGemmaLayer, buildGemmaOutput, gemmaInput, gemmaQScale, gemmaTensors } from './gemma3.js'
import { hasFusedQkv } from './qkv.js'
import { swaWindows } from './swa-pattern.js'
import type { HParams } from '../hparams.js'
import type { MetadataReader } from '../gguf/metadata-reader.js'
import type { ArchSpec } from './arch-spec.js'
import type { GemmaHParams } from './gemma3.js'

export function gemma2HParams (m: MetadataReader, base: HParams): GemmaHParams {
  const hp = denseDecoderHParams(m, base)
  const nSwa = m.posInt('attention.sliding_window', 4096)
  return {
    ...hp,
    tiedOutput: true,
    swaWindow: swaWindows(m, hp.nLayers, nSwa, 2),
    swaType: 'standard',
    fusedQkv: hasFusedQkv(m.gguf),
    qScale: gemmaQScale(hp, hp.nLayers === 46),
    ropeFreqBaseSwa: m.float('rope.freq_base_swa', hp.ropeFreqBase),
    ropeFreqScaleSwa: hp.ropeFreqScale,
    attnSoftcap: m.float('attn_logit_softcapping', 50),
    finalSoftcap: m.float('final_logit_softcapping', 30),
    qkNorm: false
  }
}

export const gemma2: ArchSpec = {
  name: 'gemma2',
  hparams: gemma2HParams,
  tensors: (hp) => gemmaTensors(hp as GemmaHParams, true),
  buildInput: gemmaInput,
  buildLayer: buildGemmaLayer,
  buildOutput: buildGemmaOutput
}
