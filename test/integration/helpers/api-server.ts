import { once } from 'node:events'
import { createHttpApp } from '../../../src/api/app.js'
import { LocalInferenceService } from '../../../src/node/local-inference-service.js'
import { ggmlShardEngine } from '../../../src/node/ggml-shard-engine.js'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import type { InferenceService } from '../../../src/shared/inference.js'
import type { LocalInferenceServiceOptions } from '../../../src/node/local-inference-service.js'

/**
 * A real HTTP server (createHttpApp + listen on 127.0.0.1:0) over the real local inference service
 * (ggml engine, bundled stories260k-f32 model). `wrap` may decorate the service (e.g. to observe
 * cancellation or add grammar-constrained generation).
 */
export interface ApiServer {
  url: string
  inference: InferenceService
  local: LocalInferenceService
  close: () => Promise<void>
}

export async function startApiServer (options: { apiKey?: string, wrap?: (s: LocalInferenceService) => InferenceService, local?: Partial<LocalInferenceServiceOptions> } = {}): Promise<ApiServer> {
  const local = new LocalInferenceService({ engine: ggmlShardEngine, threads: 1, nodeName: 'test-node', ...options.local })
  const inference = options.wrap !== undefined ? options.wrap(local) : local
  const app = createHttpApp({
    inference,
    clusterState: () => { throw new Error('not used by API tests') },
    metrics: () => '',
    version: '0.1.0-test',
    ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {})
  })
  const server: Server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    inference,
    local,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
      await local.dispose()
    }
  }
}

/** Greedy text straight from the service (the engine's own output, no HTTP). */
export async function directGeneration (inference: InferenceService, req: Parameters<InferenceService['generate']>[0]): Promise<{ text: string, finishReason: string, promptTokens: number, completionTokens: number }> {
  let text = ''
  for await (const ev of inference.generate(req, { signal: new AbortController().signal })) {
    if (ev.type === 'token') text += ev.text
    else return { text, finishReason: ev.finishReason, promptTokens: ev.usage.promptTokens, completionTokens: ev.usage.completionTokens }
  }
  throw new Error('no done event')
}
