// Counters kept by worker id for as long as the master runs (restarts, memory replacements, blocks):
// an id scaled away keeps its count, and one scaled back goes on from it, so that /metrics never
// sees a counter go down or start again from 0 (which Prometheus reads as a reset).

export class IdCounts {
  readonly #counts = new Map<number, number>();

  /** One more for worker `id`. */
  add(id: number): void {
    this.#counts.set(id, this.get(id) + 1);
  }

  get(id: number): number {
    return this.#counts.get(id) ?? 0;
  }

  /** The ids counted at least once. */
  ids(): number[] {
    return [...this.#counts.keys()];
  }

  /** Every id's count together: never goes down. */
  total(): number {
    let total = 0;
    for (const count of this.#counts.values()) total += count;
    return total;
  }
}
