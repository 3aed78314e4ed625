/**
 * node-llama-cpp's LlamaCompletion as the reference for whole generations: greedy (temperature 0, no
 * repeat penalty), threads 1, context 512, flash attention at its default ("auto", on for CPU).
 */
import { getLlama, LlamaCompletion, LlamaLogLevel } from 'node-llama-cpp'

export async function referenceGreedy (modelPath: string, prompt: string, maxTokens: number): Promise<{ text: string, tokens: number[] }> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error })
  const model = await llama.loadModel({ modelPath })
  try {
    const ctx = await model.createContext({ contextSize: 512, threads: 1 })
    const completion = new LlamaCompletion({ contextSequence: ctx.getSequence() })
    const tokens: number[] = []
    const text = await completion.generateCompletion(prompt, { maxTokens, temperature: 0, repeatPenalty: false, onToken: (t) => { tokens.push(...(t as number[])) } })
    await ctx.dispose()
    return { text, tokens }
  } finally {
    await model.dispose()
  }
}
