import type express from 'express'
import type { HttpAppDeps } from './http-app-deps.js'

/** OpenAI / Anthropic / Ollama dialect routes (issue: API surfaces). */
export function mountApiRoutes (_app: express.Express, _deps: HttpAppDeps): void {}
