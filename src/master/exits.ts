// What a worker's exit means for its id: a worker whose shutdown went wrong is logged; while the
// cluster stops, the stop is told; a successor called off for a newer one leaves without a failure;
// a replacement that failed to boot fails its requesters (the old worker serves on); the serving
// worker's exit leaves the id to its successor, or to a restart after its backoff (restarts.ts).
// Each worker's failure to bind an address is kept until its exit, whose cause it may be. The
// Supervisor owns one Exits, tells it of those failures, calls onExit() from each worker's 'exit',
// and gives it what it needs through ExitHost.
import { BootError } from '../errors.js';
import type { ClusterConfig } from './cluster-config.js';
import { describeExit, stoppedCleanly } from './exit-report.js';
import type { GracefulStop } from './graceful-stop.js';
import { describeListenFailure, type OwnListener } from './listen-failure.js';
import type { ListenFailure } from './listeners.js';
import type { Replacements } from './replacements.js';
import type { Restarts } from './restarts.js';
import type { Slot } from './slot.js';
import type { Phase } from './supervisor.js';
import type { WorkerExit, WorkerProcess } from './worker.js';

/** What Exits reads of the supervisor, and what it has it do. */
export interface ExitHost {
  readonly config: Pick<ClusterConfig, 'logs' | 'killSignal'>;
  /** The cluster's stop: told of each exit while the cluster stops. */
  readonly stop: Pick<GracefulStop, 'finishIfStopped'>;
  /** Each id's replacement under way: its successor's exit moves it on. */
  readonly replacements: Pick<Replacements, 'superseded' | 'advance'>;
  /** Each id's restart after a crash or a failed boot. */
  readonly restarting: Pick<Restarts, 'after'>;
  phase(): Phase;
  /** The cluster's slot of an id; none once the id is scaled away. */
  slot(id: number): Slot | undefined;
  /** The master's own listeners, named in a worker's failure to bind one of their addresses. */
  ownListeners(): readonly OwnListener[];
  /** A worker exited (the supervisor's 'change'). */
  changed(): void;
}

/** The exits of the cluster's workers, and what each means for its id. */
export class Exits {
  readonly #host: ExitHost;
  readonly #listenFailures = new Map<WorkerProcess, ListenFailure>();

  constructor(host: ExitHost) {
    this.#host = host;
  }

  /** The worker could not bind an address (Listeners' onFailure): its exit may say so. */
  listenFailed(worker: WorkerProcess, failure: ListenFailure): void {
    this.#listenFailures.set(worker, failure);
  }

  /** A worker of `slot`'s id exited: its serving worker, its successor, or one draining. */
  onExit(slot: Slot, worker: WorkerProcess, exit: WorkerExit): void {
    const host = this.#host;
    const listenFailure = this.#listenFailures.get(worker);
    this.#listenFailures.delete(worker);
    host.changed();
    if (exit.from === 'stopping' && worker.readyAt !== null && !exit.killed && !stoppedCleanly(exit, host.config.killSignal)) {
      // Never restarted (it was stopping), but its shutdown went wrong: an onShutdown handler
      // failed, or the app's own shutdown code threw or exited non-zero. (One stopped before it was
      // ready failed its boot, which is reported as such, or not at all while the cluster stops.)
      host.config.logs.event(
        'stop-failed',
        `worker ${worker.id} (pid ${worker.pid}) ${describeExit(exit, worker)}`,
        { worker: worker.id, pid: worker.pid, code: exit.code, signal: exit.signal },
        'warn',
      );
    }
    if (host.phase() === 'stopping') {
      host.stop.finishIfStopped();
      return;
    }
    if (slot.successor === worker && host.replacements.superseded(worker)) {
      slot.successor = null;
      host.replacements.advance(slot);
      return;
    }
    if (slot.successor === worker) {
      // A replacement that failed to boot: its requesters hear why; the old worker keeps serving,
      // or, if it died meanwhile, the id restarts as after any crash.
      slot.successor = null;
      // An address it could not bind says more than its exit (an app's exclusive port, held by the old worker).
      const why = exit.from === 'starting' && listenFailure ? describeListenFailure(listenFailure, host.ownListeners()) : describeExit(exit, worker);
      slot.want?.reject(new BootError(`worker ${slot.id}'s replacement ${why}`, worker.lastOutput()));
      slot.want = null;
      if (slot.worker !== null || host.slot(slot.id) !== slot) return;
    } else {
      // Only the serving worker of a live slot is restarted; drained and scaled-away ones are not.
      if (slot.worker !== worker || host.slot(slot.id) !== slot) return;
      slot.worker = null;
      // Its successor, already booting, takes over the id when it is ready: no second process.
      if (slot.successor) {
        host.config.logs.event('worker-exit', `worker ${worker.id} (pid ${worker.pid}) ${describeExit(exit, worker)}; its replacement is starting`, { worker: worker.id, pid: worker.pid, code: exit.code, signal: exit.signal }, 'warn');
        return;
      }
    }
    // A crash or a failed boot: the id restarts after its backoff, or the cluster gives up (restarts.ts).
    host.restarting.after(slot, worker, exit, listenFailure);
  }
}
