import { deepseek2Gen } from './deepseek2.js'
import { gemma2Gen } from './gemma2.js'
import { gemma3Gen } from './gemma3.js'
import { glm4moeGen } from './glm4moe.js'
import { gptOssGen } from './gpt-oss.js'
import { qwen2Gen, qwen3Gen } from './llama.js'
import { llamaWithExpertsGen } from './mixtral.js'
import { mistral3Gen } from './mistral3.js'
import { phi3Gen } from './phi3.js'
import { qwen3moeGen } from './qwen3moe.js'
import type { ArchGenerator } from './types.js'

/** Random-weight generators by general.architecture (one file each under scripts/model-gen/). */
export const GENERATORS: ReadonlyMap<string, ArchGenerator> = new Map([llamaWithExpertsGen, qwen2Gen, qwen3Gen, qwen3moeGen, deepseek2Gen,
  gemma3Gen, gemma2Gen, phi3Gen, mistral3Gen,
  glm4moeGen, gptOssGen].map((g) => [g.name, g]))
