// How the master kills one worker: SIGKILL at once (a worker that never got ready, one called off, a
// blocked loop), or at the end of its drain, when --grace is over or a second stop signal forces the
// stop: then one line names what its drain still had open (its last `draining` report, grace.ts), and
// the stop's outcome keeps that line (killReport). The WorkerProcess owns one, answers its public
// kill(), expireGrace(), forceKill() and killReport with it, and reads `killed` for its exit.
import type { ChildProcess } from 'node:child_process';
import { describeForcedKill, describeGraceOver, type DrainReport } from './grace.js';
import type { LogSink } from './logs.js';
import type { KilledWorker } from './status.js';
import type { WorkerState } from './worker-state.js';

/** What WorkerKiller reads of its worker, and the process it kills. */
export interface KilledProcess {
  readonly id: number;
  readonly pid: number;
  readonly logs: LogSink;
  /** The signal its drain was asked with (--kill-signal), which the line names. */
  readonly killSignal: NodeJS.Signals;
  /** Null when fork() threw: there is no process at all. */
  readonly child: Pick<ChildProcess, 'kill'> | null;
  state(): WorkerState;
}

/** The kills of one worker, and the line that said what a kill while it drained destroyed. */
export class WorkerKiller {
  readonly #worker: KilledProcess;
  /** What its drain still had open, as it last said (while stopping). */
  #drainReport: DrainReport | null = null;
  #killed = false;
  /** Set when it was killed at --grace or by a forced stop: the line the master logged for it. */
  #killReport: KilledWorker | null = null;

  constructor(worker: KilledProcess) {
    this.#worker = worker;
  }

  /** The master killed it (SIGKILL), by any of the ways below. */
  get killed(): boolean {
    return this.#killed;
  }

  /** What it was killed with, at --grace or by a forced stop, as the master said it; null if it was not. */
  get killReport(): KilledWorker | null {
    return this.#killReport;
  }

  /** The worker's report on its drain (protocol `NODE_clusterd:draining`). */
  drained(report: DrainReport): void {
    this.#drainReport = report;
  }

  /** Immediate: SIGKILL, for a forced stop, or a worker that never got ready. */
  kill(): void {
    if (this.#worker.state() === 'exited' || !this.#worker.child) return;
    this.#killed = true;
    this.#worker.child.kill('SIGKILL');
  }

  /** --grace is over and it has not exited: SIGKILL, logging what its drain still had open. */
  expireGrace(graceMs: number): void {
    const { id, pid, killSignal } = this.#worker;
    // Killed already (still starting when the stop began, a forced stop): its exit is on the way, and
    // a second line would name it twice and replace the first's report.
    if (this.#worker.state() === 'exited' || this.#killed) return;
    const message = describeGraceOver({ id, pid, graceMs, report: this.#drainReport, killSignal });
    this.#killWithWork('grace-expired', message, { graceMs });
  }

  /** A forced stop (a second stop signal): SIGKILL now, logging what it still had open as at --grace. */
  forceKill(): void {
    const { id, pid, killSignal } = this.#worker;
    // Killed already (a worker still starting when the stop began): its exit is on the way.
    const state = this.#worker.state();
    if (state === 'exited' || this.#killed) return;
    const message = describeForcedKill({ id, pid, report: this.#drainReport, draining: state === 'stopping', killSignal });
    this.#killWithWork('stop-forced', message, {});
  }

  /** SIGKILL while it drained: the line naming what was destroyed, logged and kept for whoever asked for the drain. */
  #killWithWork(event: 'grace-expired' | 'stop-forced', message: string, extra: { graceMs?: number }): void {
    const { id, pid, logs } = this.#worker;
    this.#killReport = { id, pid, message };
    logs.event(event, message, { worker: id, pid, ...extra, open: this.#drainReport?.open ?? null, appExits: this.#drainReport?.appExits ?? null }, 'warn');
    this.kill();
  }
}

/** The master's line for each of `workers` it killed at --grace (or by a forced stop) rather than drained. */
export function killedOf(workers: ReadonlyArray<{ readonly killReport: KilledWorker | null }>): KilledWorker[] {
  return workers.flatMap((worker) => (worker.killReport ? [worker.killReport] : []));
}
