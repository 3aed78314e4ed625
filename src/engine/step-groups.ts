import { DECODE_MAX, GROUP_WAIT_MS, IDLE_MS, groupSize, groupWaitMs } from './batch-step.js'

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
  /** ms of the last step, and when it ended */
  private stepMs = 0
  private stepEnd = 0
  /** when each of the last steps ended, and whether it only decoded, by step id */
  private readonly ends = new Map<number, { end: number, decodeOnly: boolean }>()
  private wakeUp: (() => void) | undefined

  /** `seqs` were evaluated together in a step from `start` to `end` (`decodeOnly`: no prompt chunk in it): they are a group now */
  record (seqs: Iterable<S>, start: number, end: number, decodeOnly = true): void {
    this.stepMs = end - start
    this.stepEnd = end
    const stepped = { id: ++this.steps, at: end }
    this.ends.set(stepped.id, { end, decodeOnly })
    this.ends.delete(stepped.id - 16)
    for (const s of seqs) this.lastStep.set(s, stepped)
  }

  /** a released sequence belongs to no group */
  forget (seq: S): void { this.lastStep.delete(seq) }

  /**
   * Pipelined sequences of the ring: pending, or stepped lately — within IDLE_MS and within the shard's last
   * 3 · depth + 1 steps (a sequence in the ring steps here about every depth steps, one per group). Not idle ones:
   * retained KV of a request that just ended would otherwise count for a second and double the groups of the next
   * requests.
   */
  active (live: Iterable<S>, pending: ReadonlySet<S>, now: number): number {
    let n = 0
    for (const s of live) {
      if (s.pipelineDepth <= 1) continue
      const g = this.lastStep.get(s)
      if (pending.has(s) || (g !== undefined && this.lately(s, g, now))) n++
    }
    return n
  }

  private lately (s: S, g: { id: number, at: number }, now: number): boolean {
    return now - g.at < IDLE_MS && this.steps - g.id <= 3 * s.pipelineDepth + 1
  }

  /**
   * Ms the next step waits for the rest of the pending decoders' group (batch-step groupWaitMs). Pipelined: the
   * members of their groups still in the ring. One node alone (depth 1): the sequences of the shard's last step that
   * have not come back yet — their callers sample and submit within a millisecond or so, and a step without them
   * would leave them a step of their own every round (a fragment that never rejoins: 7 + 1 rows instead of 8).
   * A pipelined group whose members are all back but that is smaller than a step takes also waits for the group that
   * left right after it when that one fits beside it (trailGroup): a group that split (one member late once) merges
   * again instead of costing every stage a part-filled step every round.
   */
  waitMs (live: Iterable<S>, pending: ReadonlyArray<PendingForward<S>>, now: number): number {
    const heads = new Set<S>()
    const groups = new Set<number>()
    let oldest = now
    let decoders = 0
    let solo = 0
    let depth = 1
    for (const p of pending) {
      if (heads.has(p.seq)) continue
      heads.add(p.seq)
      oldest = Math.min(oldest, p.at)
      if (p.remaining > DECODE_MAX) continue
      if (p.seq.pipelineDepth <= 1) { solo++; continue }
      decoders++
      depth = Math.max(depth, p.seq.pipelineDepth)
      const g = this.lastStep.get(p.seq)
      if (g !== undefined) groups.add(g.id)
    }
    if (groups.size === 0 && solo === 0) return 0
    let inFlight = 0
    for (const s of live) {
      const g = this.lastStep.get(s)
      if (g === undefined || heads.has(s) || s.disposed || now - g.at >= IDLE_MS) continue
      if (s.pipelineDepth > 1 ? groups.has(g.id) : solo > 0 && g.id === this.steps) inFlight++
    }
    // alone, the pending ones may have waited through the whole last step: the wait counts from its end
    if (decoders === 0) return groupWaitMs({ pending: solo, inFlight, cap: Number.POSITIVE_INFINITY, waitedMs: now - Math.max(oldest, this.stepEnd), stepMs: this.stepMs })
    const cap = groupSize(this.active(live, heads, now), depth)
    if (inFlight === 0 && groups.size === 1 && decoders < cap) return this.trailWaitMs(live, heads, [...groups][0]!, cap - decoders, now - oldest, now)
    return groupWaitMs({ pending: decoders, inFlight, cap, waitedMs: now - oldest, stepMs: this.stepMs })
  }

  /**
   * Ms to wait for the group that stepped right after group `id` (its trail behind it on this shard, plus
   * GROUP_WAIT_MS, at most a step plus GROUP_WAIT_MS) when all its members are still in the ring and at most `room`.
   * Only a decoding group: a request that was prefilling then comes back after the rest of the ring prefilled it too.
   */
  private trailWaitMs (live: Iterable<S>, pending: ReadonlySet<S>, id: number, room: number, waitedMs: number, now: number): number {
    const [mine, next] = [this.ends.get(id), this.ends.get(id + 1)]
    if (mine === undefined || next === undefined || !next.decodeOnly) return 0
    let members = 0
    for (const s of live) {
      const g = this.lastStep.get(s)
      if (g?.id !== id + 1 || s.pipelineDepth <= 1 || s.disposed || now - g.at >= IDLE_MS) continue
      if (pending.has(s)) return 0 // already here: the step takes it
      members++
    }
    if (members === 0 || members > room) return 0
    return Math.max(0, Math.min(next.end - mine.end, this.stepMs) + GROUP_WAIT_MS - waitedMs)
  }

  /**
   * Sleeps while the pending decoders should wait for the rest of their group (waitMs on the clock of
   * performance.now); the next submit (`wake`) cuts it short. True when it slept: the caller looks again.
   */
  async waitForGroup (live: Iterable<S>, pending: ReadonlyArray<PendingForward<S>>): Promise<boolean> {
    const ms = this.waitMs(live, pending, performance.now())
    if (ms <= 0) return false
    const woken = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => { this.wakeUp = undefined; resolve(false) }, ms)
      this.wakeUp = () => { clearTimeout(timer); this.wakeUp = undefined; resolve(true) }
    })
    // the timer ran out: give callbacks due in this same turn of the event loop their chance first (a process that
    // was descheduled for a while runs its timers before the callbacks that would have submitted in time)
    if (!woken) await new Promise<void>((resolve) => { setImmediate(resolve) })
    return true
  }

  /** a forward was submitted (or the shard stops): a waiting step looks again */
  wake (): void { this.wakeUp?.() }
}
