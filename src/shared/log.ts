import { pino } from 'pino'
import type { Logger } from 'pino'

export type { Logger }

let root: Logger | undefined

/**
 * Root logger. Logs go to stderr (stdout belongs to the CLI's output). Level from `setLogLevel`,
 * which config/ calls once; defaults to `info`.
 */
function getRoot (): Logger {
  root ??= pino({ level: 'info', base: undefined }, pino.destination({ fd: 2, sync: true }))
  return root
}

export function setLogLevel (level: string): void {
  getRoot().level = level
}

/** A namespaced child logger: `createLogger('mesh:membership')`. */
export function createLogger (component: string): Logger {
  return getRoot().child({ component: `exo-p2p:${component}` })
}
