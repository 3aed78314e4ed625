/** Serialises compute on one backend (its thread pool and work buffer are not re-entrant). */
export class ComputeQueue {
  private tail: Promise<unknown> = Promise.resolve()

  run<T> (fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn)
    this.tail = next.catch(() => undefined)
    return next
  }

  idle (): Promise<unknown> { return this.tail }
}
