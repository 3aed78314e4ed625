import type { Registry } from 'prom-client'
import { counterOf, gaugeOf } from './prom.js'
import type { AdmissionStats } from '../admission-gate.js'
import type { PrefixTotals } from '../prefix-reuse.js'

export interface ServingSources {
  /** admission gates by scope: `pipeline` (requests driven as a plan's first stage), `local` (models no plan serves) */
  gates: () => Array<[scope: string, stats: AdmissionStats]>
  /** retained KV for prefix reuse, summed over this node's caches (undefined: none yet) */
  prefix: () => PrefixTotals | undefined
}

/** Admission (issue 12 point 5) and prefix-reuse (point 4) metrics, read at each scrape. */
export function registerServingMetrics (registry: Registry, src: ServingSources): void {
  const gate = (pick: (s: AdmissionStats) => number) => () => src.gates().map(([scope, s]): [Record<string, string>, number] => [{ scope }, pick(s)])
  gaugeOf(registry, 'exo_p2p_admission_max_sequences', 'Sequences this node runs at once (derived from the memory budget unless --max-sequences).', ['scope'], gate((s) => s.limit))
  gaugeOf(registry, 'exo_p2p_admission_queue_limit', 'Requests that may wait for a slot; beyond them HTTP 429.', ['scope'], gate((s) => s.maxQueue))
  gaugeOf(registry, 'exo_p2p_admission_kv_capacity_bytes', 'KV bytes running sequences may hold together (the memory budget beside the loaded weights); absent without a budget.', ['scope'],
    () => src.gates().filter(([, s]) => Number.isFinite(s.capacityBytes)).map(([scope, s]): [Record<string, string>, number] => [{ scope }, s.capacityBytes]))
  gaugeOf(registry, 'exo_p2p_admission_kv_bytes', 'KV bytes the running sequences hold.', ['scope'], gate((s) => s.usedBytes))
  gaugeOf(registry, 'exo_p2p_admission_running', 'Admitted sequences running now.', ['scope'], gate((s) => s.running))
  gaugeOf(registry, 'exo_p2p_admission_queued', 'Requests waiting for a slot now.', ['scope'], gate((s) => s.queued))
  counterOf(registry, 'exo_p2p_admission_admitted_total', 'Requests admitted (at once or after waiting).', ['scope'], gate((s) => s.admitted))
  counterOf(registry, 'exo_p2p_admission_rejected_total', 'Requests refused with HTTP 429 (queue full).', ['scope'], gate((s) => s.rejected))
  const prefix = (pick: (p: PrefixTotals) => number) => (): Array<[Record<string, string>, number]> => {
    const p = src.prefix()
    return p === undefined ? [] : [[{}, pick(p)]]
  }
  counterOf(registry, 'exo_p2p_prefix_cache_hits_total', 'Requests whose prefix was found in retained KV (only the rest was prefilled).', [], prefix((p) => p.hits))
  counterOf(registry, 'exo_p2p_prefix_cache_misses_total', 'Requests prefilled cold (no retained prefix, or a stage had evicted it).', [], prefix((p) => p.misses))
  counterOf(registry, 'exo_p2p_prefix_cache_evictions_total', 'Retained KV caches freed for memory (least recently used first).', [], prefix((p) => p.evictions))
  counterOf(registry, 'exo_p2p_prefix_cache_reused_tokens_total', 'Prompt tokens not prefilled thanks to retained KV.', [], prefix((p) => p.reusedTokens))
  gaugeOf(registry, 'exo_p2p_prefix_cache_bytes', 'KV bytes retained for prefix reuse now.', [], prefix((p) => p.bytes))
  gaugeOf(registry, 'exo_p2p_prefix_cache_entries', 'Finished requests whose KV is retained now.', [], prefix((p) => p.entries))
}
