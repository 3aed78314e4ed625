/**
 * Compute devices of the loaded ggml (ggml_backend_dev_* over every registered backend) and the process-wide
 * choice of backend package + GPU device (`--gpu auto|cuda|vulkan|metal|cpu`, `--gpu-device I`).
 */
import { GpuBackendUnavailableError, InvalidEngineOptionError } from '../../shared/errors/engine-errors.js'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { findGgmlLibDir, ggmlPackageName, selectGgmlPackage, selectedGgmlPackage } from './ggml-lib.js'
import { ggml } from './ggml.js'
import type { GgmlPackage } from './ggml-lib.js'
import type { Ptr } from './ggml.js'

export type GpuChoice = 'auto' | 'cuda' | 'vulkan' | 'metal' | 'cpu'
export const GPU_CHOICES: readonly GpuChoice[] = ['auto', 'cuda', 'vulkan', 'metal', 'cpu']

/** ggml_backend_dev_type: CPU, GPU, IGPU (integrated GPU, host memory), ACCEL, META */
const DEV_TYPES = ['cpu', 'gpu', 'igpu', 'accel', 'meta'] as const

export interface NativeDevice {
  /** index among the GPU devices of the loaded package (what `--gpu-device` counts) */
  index: number
  /** ggml device name, e.g. "Vulkan0", "CUDA0" */
  name: string
  /** ggml's description, e.g. "NVIDIA H200", "llvmpipe (LLVM 15.0.6, 256 bits)" */
  description: string
  /** registry name: "Vulkan", "CUDA", "Metal" */
  backend: string
  type: typeof DEV_TYPES[number]
  totalBytes: number
  freeBytes: number
  dev: Ptr
}

/** Every GPU / integrated-GPU device the loaded ggml registered, in registry order. */
export function gpuDevices (): NativeDevice[] {
  const l = ggml()
  const out: NativeDevice[] = []
  const n = Number(l.ggml_backend_dev_count())
  const seen = new Set<Ptr>()
  for (let i = 0; i < n; i++) {
    const dev = l.ggml_backend_dev_get(i) as Ptr
    // a backend library registered twice (node-llama-cpp loading the same package in this process) lists its devices twice
    if (seen.has(dev)) continue
    seen.add(dev)
    const type = DEV_TYPES[l.ggml_backend_dev_type(dev) as number] ?? 'accel'
    if (type !== 'gpu' && type !== 'igpu') continue
    out.push({ index: out.length, dev, type, ...deviceNames(dev), ...deviceMemory(dev) })
  }
  return out
}

function deviceNames (dev: Ptr): { name: string, description: string, backend: string } {
  const l = ggml()
  return {
    name: String(l.ggml_backend_dev_name(dev)),
    description: String(l.ggml_backend_dev_description(dev)),
    backend: String(l.ggml_backend_reg_name(l.ggml_backend_dev_backend_reg(dev)))
  }
}

/** ggml_backend_dev_memory now (free drops as buffers are allocated). */
export function deviceMemory (dev: Ptr): { totalBytes: number, freeBytes: number } {
  const free = [0n]
  const total = [0n]
  ggml().ggml_backend_dev_memory(dev, free, total)
  return { freeBytes: Number(free[0]), totalBytes: Number(total[0]) }
}

export interface ComputeBackend {
  /** the package ggml came from ('cpu' = no GPU backend) */
  backend: GgmlPackage
  /** the device GPU layers go to; undefined on 'cpu' */
  device: NativeDevice | undefined
  /** every GPU device of the loaded package */
  devices: NativeDevice[]
}

let chosen: ComputeBackend | undefined

/** The backend chosen by selectComputeBackend (CPU when none was chosen). */
export function computeBackend (): ComputeBackend {
  chosen ??= { backend: selectedGgmlPackage(), device: undefined, devices: [] }
  return chosen
}

const AUTO_ORDER: readonly GgmlPackage[] = process.platform === 'darwin' ? ['metal'] : ['cuda', 'vulkan']
const REG_NAMES: Record<GgmlPackage, string> = { cpu: 'CPU', cuda: 'CUDA', vulkan: 'Vulkan', metal: 'Metal' }

/** The devices of one package's GPU backend among those registered. */
function devicesOf (pkg: GgmlPackage): NativeDevice[] {
  return gpuDevices().filter((d) => d.backend === REG_NAMES[pkg]).map((d, index) => ({ ...d, index }))
}

/**
 * Picks the backend package and device for this process, before any other native call. `auto`: the first
 * installed GPU package (CUDA, then Vulkan; Metal on macOS) with a hardware device, else CPU. An explicit GPU backend
 * whose package is missing or that has no device → GpuBackendUnavailableError (names the package and the
 * devices found). Vulkan ignores CPU-type devices (Mesa lavapipe) unless GGML_VK_VISIBLE_DEVICES is set.
 */
export function selectComputeBackend (gpu: GpuChoice, deviceIndex = 0): ComputeBackend {
  if (!GPU_CHOICES.includes(gpu)) throw new InvalidEngineOptionError(`gpu must be one of ${GPU_CHOICES.join(', ')}, got '${String(gpu)}'`)
  if (!Number.isInteger(deviceIndex) || deviceIndex < 0) throw new InvalidEngineOptionError(`gpu device must be a non-negative integer, got ${deviceIndex}`)
  if (chosen !== undefined && (gpu === chosen.backend || (gpu === 'auto' && chosen.device !== undefined)) && (chosen.device?.index ?? 0) === deviceIndex) return chosen
  if (gpu === 'cpu') {
    selectGgmlPackage('cpu')
    chosen = { backend: 'cpu', device: undefined, devices: [] }
    return chosen
  }
  if (gpu !== 'auto') {
    if (findGgmlLibDir(gpu) === undefined) throw new GpuBackendUnavailableError(gpu, ggmlPackageName(gpu), 'its npm package is not installed', [])
    selectGgmlPackage(gpu)
    let devices = devicesOf(gpu)
    if (devices.length === 0 && gpu === 'cuda' && loadCudaFallback()) devices = devicesOf(gpu)
    const device = devices[deviceIndex]
    if (device === undefined) {
      const why = devices.length === 0 ? 'it found no device' : `it has no device ${deviceIndex}`
      throw new GpuBackendUnavailableError(gpu, ggmlPackageName(gpu), why, gpuDevices().map((d) => `${d.name} (${d.description})`))
    }
    chosen = { backend: gpu, device, devices }
    return chosen
  }
  // auto: the first installed package loads base + CPU + its GPU backend; a later one adds only its GPU
  // backend library (its libggml-base is byte-identical, checked, so one base serves both). A package whose
  // devices cannot exist here (no device node) is not loaded at all: a CPU-only machine pays nothing.
  let loaded = false
  for (const pkg of AUTO_ORDER.filter((p) => findGgmlLibDir(p) !== undefined && mayHaveDevice(p))) {
    if (!loaded) {
      try { selectGgmlPackage(pkg) } catch { continue }
      loaded = true
    } else if (!loadExtraBackend(pkg)) continue
    let devices = devicesOf(pkg)
    if (devices.length === 0 && pkg === 'cuda' && loadCudaFallback()) devices = devicesOf(pkg)
    const device = devices[deviceIndex]
    // auto never picks a software rasterizer (Mesa's llvmpipe: visible with GGML_VK_VISIBLE_DEVICES, slower than the CPU backend)
    if (device !== undefined && !isSoftwareDevice(device)) {
      chosen = { backend: pkg, device, devices }
      return chosen
    }
  }
  chosen = { backend: selectedGgmlPackage(), device: undefined, devices: [] }
  return chosen
}

/**
 * Whether a hardware device of `pkg` can be present: CUDA needs NVIDIA's device nodes (/dev/nvidiactl) or driver
 * (/proc/driver/nvidia); Vulkan a DRM render node (/dev/dri/renderD*) or NVIDIA's nodes. Metal: always (macOS).
 */
function mayHaveDevice (pkg: GgmlPackage): boolean {
  const nvidia = existsSync('/dev/nvidiactl') || existsSync('/proc/driver/nvidia')
  if (pkg === 'cuda') return nvidia
  if (pkg === 'vulkan') {
    let render = false
    try { render = readdirSync('/dev/dri').some((f) => f.startsWith('renderD')) } catch { /* no DRM */ }
    return nvidia || render
  }
  return true
}

/** A CPU implementation of a GPU API (Mesa lavapipe reports itself as "llvmpipe (LLVM …)"). */
export function isSoftwareDevice (d: Pick<NativeDevice, 'description'>): boolean {
  return /^llvmpipe\b|^lavapipe\b|swiftshader/i.test(d.description)
}

/** Registers package `pkg`'s GPU backend library next to the loaded ggml when both ship the same libggml-base. */
function loadExtraBackend (pkg: GgmlPackage): boolean {
  const l = ggml()
  const dir = findGgmlLibDir(pkg)
  if (dir === undefined) return false
  if (!readFileSync(join(dir, 'libggml-base.so')).equals(readFileSync(join(l.libDir, 'libggml-base.so')))) return false
  const reg = l.ggml_backend_load(join(dir, `libggml-${pkg}.so`)) as Ptr | null
  return reg !== null && reg !== 0n
}

/**
 * node-llama-cpp's CUDA fallback: `@node-llama-cpp/linux-x64-cuda-ext` ships a libggml-cuda.so built against the
 * previous CUDA runtime (bins/<platform>-cuda/fallback), loaded when the main one finds no device (as node-llama-cpp does).
 */
function loadCudaFallback (): boolean {
  const dir = findGgmlLibDir('cuda')
  if (dir === undefined) return false
  const fallback = join(dir, '..', '..', '..', `${ggmlPackageName('cuda').split('/')[1]!}-ext`, 'bins', dir.split('/').pop()!, 'fallback', 'libggml-cuda.so')
  if (!existsSync(fallback)) return false
  const reg = ggml().ggml_backend_load(fallback) as Ptr | null
  return reg !== null && reg !== 0n
}
