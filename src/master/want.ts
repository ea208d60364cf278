// What the cluster wants of one worker id besides its existence: a reload wants a generation, a
// restart and the memory limit want a given process gone. Requests for the same id merge into one
// Want, which the supervisor satisfies with one successor (or the worker a crash restarted): a
// memory replacement during a reload is the reload's replacement of that id, and the other way
// round, instead of a conflict. Each requester waits for its own answer (the new worker, or why
// there is none) and sees the progress of the replacement that serves it.
import type { WorkerProcess } from './worker.js';
import { isUp } from './worker-state.js';

export type ReplacePhase = 'starting' | 'draining' | 'replaced';

export interface ReplaceRequest {
  /** This process must no longer serve the id (restart, memory limit). */
  retire?: WorkerProcess;
  /** The serving worker must be of this generation or a later one (reload). */
  generation?: number;
  onProgress?: (phase: ReplacePhase, worker: WorkerProcess) => void;
}

interface Waiter {
  resolve(worker: WorkerProcess): void;
  reject(error: Error): void;
  onProgress(phase: ReplacePhase, worker: WorkerProcess): void;
}

export class Want {
  readonly #retire = new Set<WorkerProcess>();
  #generation = 0;
  readonly #waiters: Waiter[] = [];

  /** Adds a request; the promise settles when the want is met (resolve()) or given up (reject()). */
  add({ retire, generation = 0, onProgress = () => {} }: ReplaceRequest): Promise<WorkerProcess> {
    if (retire) this.#retire.add(retire);
    this.#generation = Math.max(this.#generation, generation);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject, onProgress }));
  }

  /** Whether `worker` serving the id meets every request so far. */
  metBy(worker: WorkerProcess | null): boolean {
    // Booted: one whose app has closed its servers since is the new code all the same.
    return worker !== null && isUp(worker.state) && this.servedBy(worker);
  }

  /** Whether `worker`, once ready, would meet every request so far (one still booting included). */
  servedBy(worker: WorkerProcess): boolean {
    return !this.#retire.has(worker) && worker.generation >= this.#generation;
  }

  /** The generation every request asks for at least. */
  get generation(): number {
    return this.#generation;
  }

  /** Takes over `other`'s requests and their requesters (a successor that came to nothing hands them back). */
  absorb(other: Want): void {
    for (const worker of other.#retire) this.#retire.add(worker);
    this.#generation = Math.max(this.#generation, other.#generation);
    this.#waiters.push(...other.#waiters.splice(0));
  }

  progress(phase: ReplacePhase, worker: WorkerProcess): void {
    for (const waiter of this.#waiters) waiter.onProgress(phase, worker);
  }

  resolve(worker: WorkerProcess): void {
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(worker);
  }

  reject(error: Error): void {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }
}
