import { getLlama, LlamaLogLevel } from 'node-llama-cpp'
import { Tokenizer } from '../../../src/engine/tokenizer.js'
import { createGrammarConstraint } from '../../../src/engine/grammar/grammar-constraint.js'
import type { Token } from 'node-llama-cpp'
import type { FinishReason, GenerationEvent, InferenceRequest, InferenceService } from '../../../src/shared/inference.js'

/**
 * Until the generation loop (src/node/local-generator.ts) calls the grammar constraint, requests WITH
 * a grammar are generated here: real logits from node-llama-cpp (the project's logits reference), the
 * constraint of src/engine/grammar masking them, greedy choice — the exact loop the lead wires into
 * generateLocal. Requests without a grammar go to the real service unchanged.
 */
export async function withReferenceGrammar (inner: InferenceService, modelPath: string, modelId: string): Promise<InferenceService> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error })
  const model = await llama.loadModel({ modelPath })
  const context = await model.createContext({ contextSize: 1024, threads: 1 })
  const tokenizer = await Tokenizer.load(modelPath)
  const nVocab = tokenizer.nVocab

  async function * constrained (req: InferenceRequest, signal: AbortSignal): AsyncGenerator<GenerationEvent> {
    if (req.grammar === undefined || req.model !== modelId) throw new Error('reference path needs a grammar and the reference model')
    const prompt = tokenizer.renderPrompt(req.prompt).tokens
    const constraint = await createGrammarConstraint(modelPath, req.grammar, { signal })
    const sequence = context.getSequence()
    const decoder = tokenizer.createDecoder(prompt.slice(-8))
    let completion = 0
    let finish: FinishReason = 'length'
    try {
      let input: number[] = [...prompt]
      while (completion < req.maxTokens) {
        if (signal.aborted) { finish = 'cancelled'; break }
        const last = input[input.length - 1]! as Token
        const out = await sequence.controlledEvaluate([...(input.slice(0, -1) as Token[]), [last, { generateNext: { logits: true } }]])
        const map = out[out.length - 1]?.next.logits
        if (map === undefined) throw new Error('no logits')
        const logits = new Float32Array(nVocab).fill(Number.NEGATIVE_INFINITY) // (nVocab) f32
        for (const [t, v] of map) logits[t] = v
        constraint.mask(logits)
        let token = 0
        for (let t = 1; t < nVocab; t++) if (logits[t]! > logits[token]!) token = t
        constraint.accept(token)
        completion++
        if (tokenizer.isEog(token)) { finish = 'stop'; break }
        const text = decoder.push(token)
        if (text !== '') yield { type: 'token', text, tokenId: token }
        input = [token]
      }
      const rest = decoder.flush()
      if (rest !== '') yield { type: 'token', text: rest, tokenId: -1 }
      yield { type: 'done', finishReason: finish, usage: { promptTokens: prompt.length, completionTokens: completion } }
    } finally {
      sequence.dispose()
      constraint.dispose()
    }
  }

  return {
    generate: (req, options) => req.grammar !== undefined ? constrained(req, options.signal) : inner.generate(req, options),
    countTokens: async (req, options) => await inner.countTokens(req, options),
    listModels: async (options) => await inner.listModels(options)
  }
}
