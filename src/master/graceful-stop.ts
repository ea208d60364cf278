// The cluster's graceful stop: the sockets stop accepting, the connections the master queued reach
// the workers, the workers drain within --grace (killed after it), and the exit code says how it
// went; and drain(), the same for one worker. The Supervisor owns one GracefulStop, starts it with
// stop(), and has it check on each exit while the cluster stops.
import { once } from 'node:events';
import { ClusterdError } from '../errors.js';
import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import type { Listeners } from './listeners.js';
import type { Slot } from './slot.js';
import type { KilledWorker } from './status.js';
import { killedOf } from './worker-killer.js';
import type { Phase } from './supervisor.js';
import type { WorkerProcess } from './worker.js';

/**
 * On a stop, the part of --grace the connections the master queued may take to reach the workers
 * before the workers are told to stop anyway: a few acknowledgements' time under load; more only
 * while a worker's loop is blocked (its pinned connections wait for it). The rest of --grace is the
 * workers' to drain what they got.
 */
export const FLUSH_SHARE_OF_GRACE = 0.5;

/** What GracefulStop reads of the supervisor, and what it has it do. */
export interface StopHost {
  readonly graceMs: number;
  readonly sockets: Pick<Listeners, 'stopAccepting' | 'closeAll'>;
  phase(): Phase;
  /** Every worker process alive, whatever its role: current, successor or draining. */
  live(): ReadonlySet<WorkerProcess>;
  /** Every worker id's slot. */
  slots(): Iterable<Slot>;
  /** Calls off the restart an id waits for (its backoff after a crash). */
  clearRestart(slot: Slot): void;
  /** The stop begins: the phase becomes 'stopping' (the supervisor's 'stopping'). */
  stopping(): void;
  /** Every worker has exited: the phase becomes 'stopped' (the supervisor's 'stopped'), with the workers killed rather than drained. */
  stopped(exitCode: ExitCodeValue, killed: KilledWorker[]): void;
}

/** The cluster's stop, and the exit code it ends with. */
export class GracefulStop {
  readonly #host: StopHost;
  #exitCode: ExitCodeValue = ExitCode.OK;
  #graceTimer: NodeJS.Timeout | null = null;
  /** The workers alive when the stop began: no worker is forked after it. */
  #stopping: WorkerProcess[] = [];

  constructor(host: StopHost) {
    this.#host = host;
  }

  /**
   * Graceful stop: stop accepting, let every worker drain, kill those still busy after
   * --grace. A second call forces it: every worker is killed at once.
   */
  stop(exitCode: ExitCodeValue): void {
    const host = this.#host;
    if (host.phase() === 'stopped') return;
    if (host.phase() === 'stopping') {
      this.#exitCode = this.#exitCode === ExitCode.OK ? ExitCode.FORCED : this.#exitCode;
      for (const worker of host.live()) worker.forceKill();
      return;
    }
    this.#exitCode = exitCode;
    this.#stopping = [...host.live()];
    host.stopping();
    for (const slot of host.slots()) {
      host.clearRestart(slot);
      slot.want?.reject(new ClusterdError('ERR_CLUSTERD_STOPPING', 'the cluster is stopping'));
      slot.want = null;
    }
    // A worker still starting is ended at once (WorkerProcess.stop()), not left to boot meanwhile.
    for (const worker of host.live()) if (worker.state === 'starting') worker.stop();
    // The sockets stop accepting first, and the connections the master queued (rr, least, sticky
    // under load) reach the workers before the workers hear the stop; then the sockets close.
    void host.sockets
      .stopAccepting(host.graceMs * FLUSH_SHARE_OF_GRACE)
      .then(() => {
        for (const worker of host.live()) worker.stop();
        return host.sockets.closeAll();
      });
    // The exit code follows the kills (finishIfStopped): a worker killed already (still starting at the
    // stop) is not killed at --grace, and makes no exit 5.
    this.#graceTimer = setTimeout(() => {
      for (const worker of host.live()) worker.expireGrace(host.graceMs);
    }, host.graceMs);
    this.finishIfStopped();
  }

  /** While the cluster stops: once no worker is left, it is stopped. */
  finishIfStopped(): void {
    if (this.#host.phase() !== 'stopping' || this.#host.live().size > 0) return;
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#graceTimer = null;
    // Those a drain of their own killed too (an old worker of a reload, at its --grace), even just before
    // the stop began: the stop waited for them, and the operation that killed them may never report it
    // (a stop ends it). README, Stopping.
    const killed = killedOf(this.#stopping);
    if (this.#exitCode === ExitCode.OK && killed.length > 0) this.#exitCode = ExitCode.GRACE_EXPIRED;
    this.#stopping = [];
    this.#host.stopped(this.#exitCode, killed);
  }
}

/** Stops one worker gracefully and resolves once it exited (killed after `graceMs`). */
export async function drain(worker: WorkerProcess, graceMs: number): Promise<void> {
  if (worker.state === 'exited') return;
  const exited = once(worker, 'exit');
  worker.stop();
  const timer = setTimeout(() => worker.expireGrace(graceMs), graceMs);
  await exited;
  clearTimeout(timer);
}
