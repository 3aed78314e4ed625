import { ExoError } from './exo-error.js'

/** A flag, environment variable or config-file value is invalid. Message names the source and the key. */
export class ConfigError extends ExoError {
  readonly code = 'CONFIG_INVALID'
}

/** A cluster key file is missing or not in the `exo-p2p-cluster-key/v1` format. */
export class ClusterKeyError extends ExoError {
  readonly code = 'CONFIG_CLUSTER_KEY'
}
