import { throwIfAborted } from '../../shared/errors/exo-error.js'
import type { ForwardInput } from '../../engine/types.js'
import type { ShardEngine } from '../shard-engine.js'

export interface ProbeOptions {
  modelPath: string
  threads: number
  /** must match the pipeline's setting (it changes the kernels) */
  flashAttention: boolean
  /** decode steps measured after the warm-up. Default 24. */
  steps?: number
  /** time the layer on the selected GPU device (weights and KV cache there) instead of the CPU */
  onDevice?: boolean
  signal?: AbortSignal
}

export interface ProbeResult {
  /** median decode time of one average layer, ms per token */
  msPerLayer: number
  /** the layer that was timed */
  layer: number
  /** wall time of the whole probe (load included), ms */
  probeMs: number
}

const WARMUP_STEPS = 4

/**
 * Measures this node's decode speed on one layer of a model with the real engine: loads one middle
 * layer (the first when the model has fewer than 3), decodes `steps` single tokens into a fresh KV
 * cache and takes the median. One layer keeps the probe cheap even for models that do not fit this
 * node; the per-token graph overhead (~5–10 µs) is included, as it is in real decoding. With `onDevice` the
 * layer runs on the GPU device (host ↔ device copies of the hidden state included, as at a stage's ends).
 */
export async function probeLayerSpeed (engine: ShardEngine, options: ProbeOptions): Promise<ProbeResult> {
  const t0 = performance.now()
  throwIfAborted(options.signal)
  const meta = engine.readMetadata(options.modelPath)
  const layer = meta.nLayers >= 3 ? Math.floor(meta.nLayers / 2) : 0
  // on the device: the layer offloaded (its norms pinned there, as in a fully offloaded stage), the output not
  const gpu = options.onDevice === true ? { gpuLayers: 1, gpuOutput: false, gpuFullOffload: true } : {}
  const shard = await engine.loadShard({ modelPath: options.modelPath, range: { start: layer, end: layer + 1 }, threads: options.threads, flashAttention: options.flashAttention, ...gpu }, options.signal !== undefined ? { signal: options.signal } : {})
  try {
    const steps = Math.max(1, options.steps ?? 24)
    const session = shard.createSession({ contextSize: WARMUP_STEPS + steps + 1 })
    try {
      const times: number[] = []
      for (let i = 0; i < WARMUP_STEPS + steps; i++) {
        throwIfAborted(options.signal)
        // a first shard takes a token id; any other a (1, nEmbd) f32 hidden state
        const input: ForwardInput = shard.isFirst
          ? { kind: 'tokens', tokens: Int32Array.of(i % meta.nVocab) }
          : { kind: 'hidden', hidden: new Float32Array(meta.nEmbd).fill(0.01 * ((i % 7) + 1)), nTokens: 1 }
        const s = performance.now()
        await session.forward(input, { logits: 'last' })
        if (i >= WARMUP_STEPS) times.push(performance.now() - s)
      }
      times.sort((a, b) => a - b)
      const median = times[Math.floor(times.length / 2)]!
      return { msPerLayer: Math.min(1000, Math.max(1e-4, median)), layer, probeMs: performance.now() - t0 }
    } finally {
      session.dispose()
    }
  } finally {
    await shard.dispose()
  }
}
