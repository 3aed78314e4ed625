import { existsSync } from 'node:fs'
import { InvalidArgumentError, Option } from 'commander'
import { ExoError } from '../../shared/errors/exo-error.js'
import type { ComputeBackendInfo } from '../../node/gpu-offload.js'
import { asModelId, asRequestId } from '../../shared/ids.js'
import { DEFAULT_MODEL_ID, modelIdOfPath } from '../../node/model-registry.js'
import type { Command } from 'commander'
import type { SamplingParams } from '../../shared/inference.js'

interface RunFlags {
  model?: string
  prompt: string
  maxTokens: number
  temperature?: number
  seed?: number
  shards: number
  threads: number
  flashAttention: boolean
  topK?: number
  topP?: number
  minP?: number
  repeatPenalty?: number
  gpu: 'auto' | 'cuda' | 'vulkan' | 'metal' | 'cpu'
  gpuDevice: number
  gpuLayers: number | 'auto'
}

const integer = (min: number) => (value: string): number => {
  const n = Number(value)
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}, got '${value}'`)
  return n
}
const number = (min: number, max = Infinity) => (value: string): number => {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number in [${min}, ${max}], got '${value}'`)
  return n
}

const gpuLayers = (value: string): number | 'auto' => value === 'auto' ? 'auto' : integer(0)(value)

/** `exo-p2p run`: one completion on this machine, streamed to stdout (statistics go to stderr). */
export default function register (program: Command): void {
  program
    .command('run')
    .description('Generate a completion locally (optionally split into in-process shards) and print it')
    .requiredOption('-p, --prompt <text>', 'prompt text (completion, no chat template)')
    .option('-m, --model <path>', 'GGUF model file (default: the bundled stories260k-f32)')
    .option('-n, --max-tokens <n>', 'tokens to generate', integer(1), 128)
    .option('-t, --temperature <t>', 'sampling temperature, 0 = greedy (default 0.8)', number(0))
    .option('--seed <s>', 'sampling seed: same seed, same tokens (default random)', integer(0))
    .option('--top-k <k>', 'top-k, 0 = off (default 40)', integer(0))
    .option('--top-p <p>', 'top-p, 1 = off (default 0.95)', number(0, 1))
    .option('--min-p <p>', 'min-p, 0 = off (default 0.05)', number(0, 1))
    .option('--repeat-penalty <r>', 'repetition penalty, 1 = off (default 1)', number(0))
    .option('--shards <k>', 'split the layers evenly into k in-process shards', integer(1), 1)
    .option('--threads <n>', 'CPU threads per shard', integer(1), 1)
    .option('--no-flash-attention', 'plain softmax attention instead of flash attention (llama.cpp\'s CPU default is on)')
    .addOption(new Option('--gpu <backend>', 'compute backend: the best installed GPU backend with a device, one by name, or cpu').choices(['auto', 'cuda', 'vulkan', 'metal', 'cpu']).default('auto'))
    .option('--gpu-device <i>', 'GPU device index within the backend', integer(0), 0)
    .option('--gpu-layers <n|auto>', 'layers on the GPU (the last ones); auto = as many as fit its free memory', gpuLayers, 'auto')
    .action(async (flags: RunFlags, cmd: Command) => {
      if (flags.model !== undefined && !existsSync(flags.model)) cmd.error(`error: model file not found: ${flags.model}`, { exitCode: 1 })
      const [{ LocalInferenceService }, { ggmlShardEngine }, { gpuOffloadFor }] = await Promise.all([
        import('../../node/local-inference-service.js'), import('../../node/ggml-shard-engine.js'), import('../../node/gpu-offload.js')
      ])
      let backend: ComputeBackendInfo | undefined
      try {
        backend = ggmlShardEngine.selectBackend?.(flags.gpu, flags.gpuDevice)
      } catch (err) {
        if (!(err instanceof ExoError)) throw err
        process.stderr.write(`error: ${err.message}\n`)
        process.exit(1)
      }
      if (backend?.device !== undefined) process.stderr.write(`[gpu] ${backend.backend} ${backend.device.name}: ${backend.device.description}, ${(backend.device.freeBytes / 2 ** 30).toFixed(1)} of ${(backend.device.totalBytes / 2 ** 30).toFixed(1)} GiB free\n`)
      const service = new LocalInferenceService({
        gpu: gpuOffloadFor(backend, flags.gpuLayers),
        engine: ggmlShardEngine,
        ...(flags.model !== undefined ? { modelPaths: [flags.model] } : {}),
        shards: flags.shards,
        threads: flags.threads,
        flashAttention: flags.flashAttention
      })
      const sampling: SamplingParams = {}
      if (flags.temperature !== undefined) sampling.temperature = flags.temperature
      if (flags.seed !== undefined) sampling.seed = flags.seed
      if (flags.topK !== undefined) sampling.topK = flags.topK
      if (flags.topP !== undefined) sampling.topP = flags.topP
      if (flags.minP !== undefined) sampling.minP = flags.minP
      if (flags.repeatPenalty !== undefined) sampling.repeatPenalty = flags.repeatPenalty
      const ac = new AbortController()
      const onSigint = (): void => { ac.abort() }
      process.once('SIGINT', onSigint)
      const started = performance.now()
      let firstTokenAt: number | undefined
      try {
        const events = service.generate({
          id: asRequestId(`run_${process.pid}`),
          model: flags.model !== undefined ? modelIdOfPath(flags.model) : asModelId(DEFAULT_MODEL_ID),
          prompt: { kind: 'text', text: flags.prompt },
          maxTokens: flags.maxTokens,
          sampling,
          stop: []
        }, { signal: ac.signal })
        for await (const e of events) {
          if (e.type === 'token') {
            firstTokenAt ??= performance.now()
            process.stdout.write(e.text)
          } else {
            process.stdout.write('\n')
            const decodeMs = performance.now() - (firstTokenAt ?? started)
            const rate = e.usage.completionTokens > 1 ? ((e.usage.completionTokens - 1) / decodeMs) * 1000 : 0
            process.stderr.write(`[${e.finishReason}] prompt ${e.usage.promptTokens} tokens, generated ${e.usage.completionTokens} tokens, ` +
              `first token after ${((firstTokenAt ?? performance.now()) - started).toFixed(0)} ms (incl. loading), decode ${rate.toFixed(1)} tokens/s\n`)
          }
        }
      } catch (err) {
        process.stderr.write(`error: ${(err as Error).message}\n`)
        process.exitCode = 1
      } finally {
        process.off('SIGINT', onSigint)
        await service.dispose()
      }
    })
}
