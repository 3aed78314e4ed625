import assert from 'node:assert/strict'
import { test } from 'node:test'
import { selectComputeBackend } from '../../../src/engine/index.js'
import { onDevice, resolvePlacement } from '../../../src/engine/shard-placement.js'
import { GpuBackendUnavailableError, InvalidEngineOptionError } from '../../../src/shared/errors/engine-errors.js'

// no native call: every case is refused (or resolved) before ggml is loaded
const opts = { modelPath: 'm.gguf', threads: 1 }

test('a CPU-only shard: no device, nothing offloaded; GPU options without gpuLayers are refused', () => {
  const p = resolvePlacement({ ...opts, range: { start: 0, end: 4 } }, { start: 0, end: 4 }, 4)
  assert.equal(p.device, undefined)
  assert.equal([-1, 0, 3, 4].some((il) => onDevice(p, il, 4)), false)
  assert.throws(() => resolvePlacement({ ...opts, range: { start: 0, end: 4 }, gpuOutput: true }, { start: 0, end: 4 }, 4), InvalidEngineOptionError)
})

test('gpuLayers is validated before any native call; without a selected device it is refused', () => {
  const range = { start: 2, end: 4 }
  for (const gpuLayers of [-1, 3, 1.5, Number.NaN]) {
    assert.throws(() => resolvePlacement({ ...opts, range, gpuLayers }, range, 4), (e: unknown) => e instanceof InvalidEngineOptionError && /gpuLayers must be an integer in \[0, 2\]/.test(e.message))
  }
  assert.throws(() => resolvePlacement({ ...opts, range, gpuLayers: 1 }, range, 4), (e: unknown) => e instanceof InvalidEngineOptionError && /no GPU device/.test(e.message))
})

test('--gpu with a package that is not installed names the package to install; bad choices are refused', () => {
  // Metal ships only for macOS: on Linux its package is never installed
  if (process.platform === 'linux') {
    assert.throws(() => selectComputeBackend('metal'), (e: unknown) => e instanceof GpuBackendUnavailableError &&
      e.message.includes(`@node-llama-cpp/linux-${process.arch}-metal`) && e.message.includes('npm install') && /GPU devices found: none/.test(e.message))
  }
  assert.throws(() => selectComputeBackend('opencl' as never), InvalidEngineOptionError)
  assert.throws(() => selectComputeBackend('cuda', -1), InvalidEngineOptionError)
})
