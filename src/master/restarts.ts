// What the supervisor does once a worker's exit is a crash or a failed boot: the id's backoff
// (reset once a worker has stayed up; none after the watchdog's kill), the log line that says why
// and how long the id waits, and the timer after which the supervisor reconciles it back. A failed
// boot with no worker serving may end the cluster instead (giveUpOnBoot). The Supervisor owns one,
// calls after() from its exit handler, and gives it what it needs through RestartHost.
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { giveUpOnBoot } from './boot-give-up.js';
import type { ClusterConfig } from './cluster-config.js';
import { BootError, type ClusterdError } from '../errors.js';
import { describeExit } from './exit-report.js';
import { describeListenFailure, type OwnListener } from './listen-failure.js';
import type { ListenFailure } from './listeners.js';
import type { Slot } from './slot.js';
import type { Phase } from './supervisor.js';
import type { WorkerExit, WorkerProcess } from './worker.js';
import { isUp } from './worker-state.js';

/** What Restarts reads of the supervisor, and what it has it do. */
export interface RestartHost {
  readonly config: Pick<ClusterConfig, 'logs' | 'maxBootFailures' | 'nodeArgGiven'>;
  readonly backoff: BackoffPolicy;
  phase(): Phase;
  /** Every worker id's slot. */
  slots(): Iterable<Slot>;
  /** The serving worker of each id. */
  workers(): WorkerProcess[];
  /** The master's own listeners, named in a worker's failure to bind one of their addresses. */
  ownListeners(): readonly OwnListener[];
  /** The watchdog killed it: its id restarts at once, without backoff. */
  restartAtOnce(worker: WorkerProcess): boolean;
  /** Counts a restart of worker `id` after an unexpected exit. */
  restarted(id: number): void;
  /** Makes the running set match the desired one (a waiting id is forked again). */
  reconcile(): void;
  /** The app cannot run: the cluster stops with this error. */
  fatal(error: ClusterdError): void;
  /** A worker of that id failed to boot and is retried (the supervisor's 'boot-failed'). */
  bootFailed(id: number, failure: BootError): void;
}

/** The restarts of the cluster's worker ids after a crash or a failed boot. */
export class Restarts {
  readonly #host: RestartHost;

  constructor(host: RestartHost) {
    this.#host = host;
  }

  /**
   * The id of `slot` lost its worker to a crash or a failed boot (`listenFailure`: its failure to
   * bind an address, if that is how it failed): restart it after its backoff, or give up.
   */
  after(slot: Slot, worker: WorkerProcess, exit: WorkerExit, listenFailure: ListenFailure | undefined): void {
    const { config } = this.#host;
    // The monotonic clock: a wall-clock step must not reset the backoff, or hold it up.
    const uptime = worker.servedMs;
    let delay = 0;
    if (!this.#host.restartAtOnce(worker)) {
      // After a long run this crash is the first of a new run: its count is 1 (status and the line
      // below print it), and its wait the first one, as from the cluster's start.
      slot.attempt = uptime >= this.#host.backoff.resetAfterMs ? 1 : slot.attempt + 1;
      delay = backoffDelay(this.#host.backoff, slot.attempt - 1);
    }
    if (exit.from === 'starting') {
      slot.bootFailures++;
      const reason = describeExit(exit, worker);
      const phase = this.#host.phase();
      // Once the cluster has run, a worker that cannot boot while others serve never stops them:
      // a crash restart after a broken deploy, a scale-up, a fork the process limit refuses. Its id
      // is retried with the backoff (at most 15 s apart) for as long as another worker serves; only
      // a cluster with no worker left serving gives up after --max-boot-failures, as at first boot.
      // One that closed its servers counts: it runs, and may listen again (giving up would end it).
      const serving = phase === 'running' ? this.#host.workers().filter((other) => isUp(other.state)).length : 0;
      if (serving === 0) {
        const failures = { all: [...this.#host.slots()].reduce((sum, each) => sum + each.bootFailures, 0), id: slot.bootFailures };
        const fatal = giveUpOnBoot({ exit, worker, reason, listenFailure, ownListeners: this.#host.ownListeners(), phase, failures, config });
        if (fatal) {
          this.#host.fatal(fatal);
          return;
        }
      }
      const why = listenFailure ? describeListenFailure(listenFailure, this.#host.ownListeners()) : reason;
      // While the cluster first boots, a retried boot is progress, not an error: stderr is kept
      // for the one line that says why clusterd gives up, if it does.
      const level = phase === 'booting' ? 'info' : 'warn';
      const retry = serving > 0 ? `; retrying in ${(delay / 1000).toFixed(1)} s while ${serving} ${serving === 1 ? 'worker serves' : 'workers serve'}` : '';
      config.logs.event('boot-failed', `worker ${worker.id} failed to boot: ${why}${retry}`, { worker: worker.id, pid: worker.pid, code: exit.code, signal: exit.signal }, level);
      this.#schedule(slot, delay);
      const failure = new BootError(`worker ${worker.id} ${why}`, worker.lastOutput());
      // A reload or restart waiting for this id (it was restarting when asked) hears why, as from a
      // successor's failed boot, rather than waiting for a boot that may never come; the id retries.
      slot.want?.reject(failure);
      slot.want = null;
      this.#host.bootFailed(slot.id, failure);
      return;
    }
    // A wait of a second or more is said, with why: nothing serves on that id meanwhile.
    const wait = delay >= 1000 ? ` in ${(delay / 1000).toFixed(1)} s (${slot.attempt === 1 ? '1 crash' : `${slot.attempt} crashes in a row`})` : '';
    config.logs.event(
      'worker-exit',
      `worker ${worker.id} (pid ${worker.pid}) ${describeExit(exit, worker)}; restarting${wait}`,
      { worker: worker.id, pid: worker.pid, code: exit.code, signal: exit.signal, restartInMs: delay },
      'warn',
    );
    this.#schedule(slot, delay);
  }

  /** The restart an id waits for is made now, not after its backoff (an operator's restart or reload): counted, its timer called off. */
  now(slot: Slot): void {
    if (slot.restartTimer) this.#host.restarted(slot.id);
    this.clear(slot);
  }

  /** Calls off the restart an id waits for (its backoff after a crash). */
  clear(slot: Slot): void {
    if (slot.restartTimer) clearTimeout(slot.restartTimer);
    slot.restartTimer = null;
    slot.restartAt = null;
  }

  /**
   * The restart counts when it is made, not when it is planned: a scale-up's id whose first worker
   * failed to boot is scaled back (clear()) and was never restarted, whatever the backoff planned.
   */
  #schedule(slot: Slot, delay: number): void {
    slot.restartAt = Date.now() + delay;
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      slot.restartAt = null;
      this.#host.restarted(slot.id);
      this.#host.reconcile();
    }, delay);
  }
}
