import { open, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { WeightsErrorCode, WeightsRequestError } from '../../shared/errors/protocol-errors.js'
import type { WeightsManifest, WeightsReader, WeightsSource } from '../../protocols/weights/index.js'
import { modelFiles } from '../model-registry.js'
import type { ModelEntry } from '../model-registry.js'
import { ManifestCache } from './manifest-builder.js'

export interface LocalWeightsSourceInit {
  /** the models this node holds whole (the registry: `--model` paths and `<data dir>/models/*.gguf`) */
  list: () => Promise<ModelEntry[]>
  /** the Hub's sha256 of a model's file (`fileName`: a split model's part), when the node pulled it (provenance HUB if the file matches) */
  hubSha256?: (modelId: string, fileName: string) => Promise<string | undefined>
  /**
   * TEST ONLY (`EXO_P2P_TEST_TAMPER_WEIGHTS`): flip the first byte of every piece served, so the
   * fetcher's verification can be exercised against a real node process.
   */
  tamper?: boolean
}

/** The weights protocol's view of this node's model files (protocols/weights.md, holder side). A manifest is cached per file. */
export class LocalWeightsSource implements WeightsSource {
  private readonly manifests = new ManifestCache()

  constructor (private readonly init: LocalWeightsSourceInit) {}

  /**
   * The file a request names (protocols/weights.md "File id"): a model id (a split model's: its part 1),
   * or the file name without `.gguf` of one part of a split model this node holds.
   */
  private async entry (fileId: string): Promise<{ modelId: string, path: string }> {
    const models = await this.init.list()
    const hit = models.find((m) => m.id === fileId)
    if (hit !== undefined) return { modelId: hit.id, path: hit.path }
    for (const m of models) {
      const part = modelFiles(m.path).find((p) => basename(p) === `${fileId}.gguf`)
      if (part !== undefined && await stat(part).then((s) => s.isFile(), () => false)) return { modelId: m.id, path: part }
    }
    throw new WeightsRequestError(WeightsErrorCode.UnknownModel, `this node holds no model or split part ${fileId}`)
  }

  async manifest (fileId: string, signal: AbortSignal): Promise<WeightsManifest> {
    const e = await this.entry(fileId)
    const hub = await this.init.hubSha256?.(e.modelId, basename(e.path)).catch(() => undefined)
    return await this.manifests.get(e.path, { signal, ...(hub !== undefined ? { hubSha256: hub } : {}) })
  }

  /** The file of `fileId`, open for one range request (one handle, not one per piece). */
  async reader (fileId: string): Promise<WeightsReader> {
    const e = await this.entry(fileId)
    const fh = await open(e.path, 'r')
    const tamper = this.init.tamper === true
    return {
      read: async (offset, into) => {
        let got = 0
        while (got < into.byteLength) {
          const { bytesRead } = await fh.read(into, got, into.byteLength - got, offset + got)
          if (bytesRead === 0) throw new WeightsRequestError(WeightsErrorCode.FileChanged, `${fileId}: file ends at ${offset + got}, before ${offset + into.byteLength}`)
          got += bytesRead
        }
        if (tamper) into[0]! ^= 0xff
      },
      close: async () => { await fh.close() }
    }
  }
}
