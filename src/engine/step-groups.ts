import { DECODE_MAX, IDLE_MS, groupSize, groupWaitMs } from './batch-step.js'

/** What the groups need of a sequence (BatchSequence). */
export interface GroupedSequence {
  readonly pipelineDepth: number
  readonly disposed: boolean
}

/** A pending forward, as the groups see it: its sequence, tokens left, when it was submitted (ms). */
export interface PendingForward<S extends GroupedSequence> {
  seq: S
  /** tokens it still has to evaluate */
  remaining: number
  at: number
}

/**
 * The groups of a shard's pipelined sequences (batch-step.ts): a group is the sequences that left the shard in one
 * step. Remembers each sequence's last step; tells how many sequences the ring holds and how long the next step
 * should wait for the rest of a group. Times are ms on one clock (performance.now), passed in except to waitForGroup.
 */
export class StepGroups<S extends GroupedSequence> {
  private readonly lastStep = new Map<S, { id: number, at: number }>()
  private steps = 0
  /** ms of the last step */
  private stepMs = 0
  private wakeUp: (() => void) | undefined

  /** `seqs` were evaluated together in a step from `start` to `end`: they are a group now */
  record (seqs: Iterable<S>, start: number, end: number): void {
    this.stepMs = end - start
    const stepped = { id: ++this.steps, at: end }
    for (const s of seqs) this.lastStep.set(s, stepped)
  }

  /** a released sequence belongs to no group */
  forget (seq: S): void { this.lastStep.delete(seq) }

  /** Pipelined sequences of the ring: pending, or stepped within IDLE_MS (not idle ones, e.g. retained KV). */
  active (live: Iterable<S>, pending: ReadonlySet<S>, now: number): number {
    let n = 0
    for (const s of live) {
      if (s.pipelineDepth <= 1) continue
      const g = this.lastStep.get(s)
      if (pending.has(s) || (g !== undefined && now - g.at < IDLE_MS)) n++
    }
    return n
  }

  /** Ms the next step waits for members of the pending decoders' groups still in the ring (batch-step groupWaitMs). */
  waitMs (live: Iterable<S>, pending: ReadonlyArray<PendingForward<S>>, now: number): number {
    const heads = new Set<S>()
    const groups = new Set<number>()
    let oldest = now
    let decoders = 0
    let depth = 1
    for (const p of pending) {
      if (heads.has(p.seq)) continue
      heads.add(p.seq)
      oldest = Math.min(oldest, p.at)
      if (p.seq.pipelineDepth <= 1 || p.remaining > DECODE_MAX) continue
      decoders++
      depth = Math.max(depth, p.seq.pipelineDepth)
      const g = this.lastStep.get(p.seq)
      if (g !== undefined) groups.add(g.id)
    }
    if (groups.size === 0) return 0
    let inFlight = 0
    for (const s of live) {
      const g = this.lastStep.get(s)
      if (g !== undefined && !heads.has(s) && !s.disposed && groups.has(g.id) && now - g.at < IDLE_MS) inFlight++
    }
    return groupWaitMs({ pending: decoders, inFlight, cap: groupSize(this.active(live, heads, now), depth), waitedMs: now - oldest, stepMs: this.stepMs })
  }

  /**
   * Sleeps while the pending decoders should wait for the rest of their group (waitMs on the clock of
   * performance.now); the next submit (`wake`) cuts it short. True when it slept: the caller looks again.
   */
  async waitForGroup (live: Iterable<S>, pending: ReadonlyArray<PendingForward<S>>): Promise<boolean> {
    const ms = this.waitMs(live, pending, performance.now())
    if (ms <= 0) return false
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.wakeUp = undefined; resolve() }, ms)
      this.wakeUp = () => { clearTimeout(timer); this.wakeUp = undefined; resolve() }
    })
    return true
  }

  /** a forward was submitted (or the shard stops): a waiting step looks again */
  wake (): void { this.wakeUp?.() }
}
