import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { LabelValues } from 'prom-client'

/**
 * The node's Prometheus registry: prom-client's default process / Node.js metrics (`process_*`,
 * `nodejs_*`, standard names) plus the node's own `exo_p2p_*` metrics, registered by their owners.
 */
export function createNodeRegistry (): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return registry
}

type Samples = Array<[LabelValues<string>, number]>

const finite = (v: number): number => Number.isFinite(v) ? v : 0

/** A counter whose value lives elsewhere (a plain number kept by pure code): read at each scrape. */
export function counterOf (registry: Registry, name: string, help: string, labelNames: string[], read: () => Samples): Counter {
  return new Counter({
    name, help, labelNames, registers: [registry],
    collect () {
      this.reset()
      for (const [labels, v] of read()) this.inc(labels, Math.max(0, finite(v)))
    }
  })
}

/** A gauge read at each scrape. Series not in `read()` disappear (a peer that left drops its RTT). */
export function gaugeOf (registry: Registry, name: string, help: string, labelNames: string[], read: () => Samples): Gauge {
  return new Gauge({
    name, help, labelNames, registers: [registry],
    collect () {
      this.reset()
      for (const [labels, v] of read()) this.set(labels, finite(v))
    }
  })
}

/** Buckets (seconds) of the latency histograms: token gaps and hops (sub-ms on a LAN) up to whole requests. */
export const BUCKETS = {
  /** one activation hop */
  hop: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
  /** one forward pass of a stage, one token gap */
  pass: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  /** time to first token (prefill included) */
  ttft: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  /** a whole request */
  request: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
}

/** A histogram owned by pure code's counters object: created unregistered, registered by the node. */
export function histogram (name: string, help: string, labelNames: string[], buckets: number[]): Histogram {
  return new Histogram({ name, help, labelNames, buckets, registers: [] })
}
