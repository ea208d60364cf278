// One worker id (1..N) of the cluster and what holds it over time: its serving worker, the
// successor that replaces it, its restart after a crash or a failed boot (the backoff's count, the
// failed boots in a row, the timer) and the replacements asked of it. The Supervisor keeps one Slot per id; Restarts, Replacements, Exits and
// GracefulStop change them as the id's workers come and go.
import type { Want } from './want.js';
import type { WorkerProcess } from './worker.js';

/** One worker id (1..N) and the processes that hold it over time. */
export interface Slot {
  readonly id: number;
  /** The worker serving under this id. */
  worker: WorkerProcess | null;
  /** Its replacement while it boots (reload, restart, memory limit). */
  successor: WorkerProcess | null;
  /** Consecutive quick failures, drives the backoff. */
  attempt: number;
  /**
   * Failed boots of this id in a row, since any worker last got ready: --max-boot-failures is
   * counted per id, so that N workers failing together (a mass crash while a dependency is down)
   * count one failure each, and each id's tries are spaced by its backoff.
   */
  bootFailures: number;
  restartTimer: NodeJS.Timeout | null;
  /** When restartTimer fires (epoch ms): the id has no process until then. */
  restartAt: number | null;
  /** Replacement requests (reload, restart, memory limit) not met yet, merged. */
  want: Want | null;
}

/** The slot of an id the cluster has just grown to: no process yet, nothing counted. */
export function newSlot(id: number): Slot {
  return { id, worker: null, successor: null, attempt: 0, bootFailures: 0, restartTimer: null, restartAt: null, want: null };
}
