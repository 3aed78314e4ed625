import { deepseek2 } from './deepseek2.js'
import { gemma2 } from './gemma2.js'
import { gemma3 } from './gemma3.js'
import { glm4moe } from './glm4moe.js'
import { gptOss } from './gpt-oss.js'
import { llama } from './llama.js'
import { mistral3 } from './mistral3.js'
import { phi3 } from './phi3.js'
import { qwen2 } from './qwen2.js'
import { qwen3 } from './qwen3.js'
import { qwen3moe } from './qwen3moe.js'
import type { ArchSpec } from './arch-spec.js'

/** Architectures with a graph builder, by `general.architecture`. */
export const ARCHITECTURES: ReadonlyMap<string, ArchSpec> = new Map([[llama.name, llama], [qwen2.name, qwen2], [qwen3.name, qwen3], [qwen3moe.name, qwen3moe], [deepseek2.name, deepseek2],
  [gemma3.name, gemma3], [gemma2.name, gemma2], [phi3.name, phi3], [mistral3.name, mistral3],
  [glm4moe.name, glm4moe], [gptOss.name, gptOss]])
