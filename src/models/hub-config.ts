import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

/** Where and how to reach the Hugging Face Hub, from the environment the Hub's own tools read. */
export interface HubConfig {
  /** `HF_ENDPOINT`, default `https://huggingface.co`; no trailing slash */
  endpoint: string
  /** `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`, else the file `HF_TOKEN_PATH` (default `$HF_HOME/token`) */
  token: string | undefined
  /** `HF_HUB_CACHE`, default `$HF_HOME/hub`, `HF_HOME` default `~/.cache/huggingface` */
  cacheDir: string
}

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co'

function nonEmpty (v: string | undefined): string | undefined {
  const t = v?.trim()
  return t === undefined || t === '' ? undefined : t
}

/** Reads the Hub settings (the token file only when no token variable is set). */
export function hubConfigFromEnv (env: NodeJS.ProcessEnv = process.env): HubConfig {
  const hfHome = nonEmpty(env.HF_HOME) ?? join(homedir(), '.cache', 'huggingface')
  let token = nonEmpty(env.HF_TOKEN) ?? nonEmpty(env.HUGGING_FACE_HUB_TOKEN)
  if (token === undefined) {
    try { token = nonEmpty(readFileSync(nonEmpty(env.HF_TOKEN_PATH) ?? join(hfHome, 'token'), 'utf8')) } catch { token = undefined }
  }
  return {
    endpoint: (nonEmpty(env.HF_ENDPOINT) ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, ''),
    token,
    cacheDir: nonEmpty(env.HF_HUB_CACHE) ?? join(hfHome, 'hub')
  }
}
