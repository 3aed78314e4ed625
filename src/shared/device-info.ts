/**
 * One compute device a node found (protocols/membership.md `devices`): announced by each node, read by the
 * planner (device memory and speed), shown by `exo-p2p peers`, `/cluster/state` and the dashboard.
 * Filled by the engine's device enumeration (ggml_backend_dev_*); sizes in bytes.
 */
export type DeviceBackend = 'cuda' | 'vulkan' | 'metal' | 'cpu'

export const DEVICE_BACKENDS: readonly DeviceBackend[] = ['cuda', 'vulkan', 'metal', 'cpu']

export interface DeviceInfo {
  backend: DeviceBackend
  /** the device's description as ggml reports it, e.g. "NVIDIA H200" (≤ 128 chars) */
  name: string
  /** device memory, bytes (ggml_backend_dev_memory total) */
  totalBytes: number
  /** free device memory when the node last sampled it, bytes (ggml_backend_dev_memory free) */
  freeBytes: number
  /**
   * Device memory the node offers plans for weights + KV cache + compute buffers, bytes: the free memory
   * sampled once when the engine opened the device (before the node loaded anything onto it), less a
   * reserve the engine picks. Constant while the node runs (unlike `freeBytes`, which drops as layers
   * load), so every node plans from the same number and plans do not flap. 0 = offer nothing.
   */
  budgetBytes: number
  /**
   * Measured decode time of one average layer of the served model with its weights and KV cache on THIS
   * device, ms per token (the speed probe run on the device; same unit as `pipeline.msPerLayer`, which is
   * measured on the host CPU). 0 = not measured: the planner offloads no layer to this device.
   */
  computeMsPerLayer: number
  /**
   * The most layers the node lets the planner put on this device (`--gpu-layers N`); absent = as many as
   * fit its free memory (`--gpu-layers auto`). 0 = never offload to it.
   */
  maxLayers?: number
}
