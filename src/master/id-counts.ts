// Counters kept by worker id (restarts, memory replacements, blocks). An id scaled away is dropped:
// one scaled back is a new worker and starts from 0 (the dashboard showed a new worker 3 with the
// restarts of the one scaled away). The total keeps what dropped ids counted, so that /metrics'
// master-level counters never go down (which Prometheus reads as a reset, and increase() then
// invents). A per-id series that goes away and comes back at 0 is a reset Prometheus reads right.

export class IdCounts {
  readonly #counts = new Map<number, number>();
  /** What the dropped ids had counted. */
  #dropped = 0;

  /** One more for worker `id`. */
  add(id: number): void {
    this.#counts.set(id, this.get(id) + 1);
  }

  get(id: number): number {
    return this.#counts.get(id) ?? 0;
  }

  /** Forgets worker `id` (scaled away); its count stays in total(). */
  drop(id: number): void {
    this.#dropped += this.get(id);
    this.#counts.delete(id);
  }

  /** The ids counted at least once and not dropped since. */
  ids(): number[] {
    return [...this.#counts.keys()];
  }

  /** Every id's count together, dropped ones included: never goes down. */
  total(): number {
    let total = this.#dropped;
    for (const count of this.#counts.values()) total += count;
    return total;
  }
}
