// The master's side of the control plane's operations: ControlOperations over the supervisor, its
// Operations (reload, restart, scale) and the log ring. The control plane (src/control) knows only
// the interface; this adapter is the one place that knows where each answer comes from.
import type { EventData, LogSink } from './logs.js';
import type { Operations } from './operations.js';
import type { BlockedStack, ControlOperations, LogEntry, LoopOutcome, OperationProgress, ProfileOutcome, ScaleOutcome, StackReport, StopOutcome } from './status.js';
import type { Supervisor } from './supervisor.js';
import type { BlockedInfo } from './status.js';
import { waitingToRestart } from './waiting.js';
import type { WorkerProcess } from './worker.js';
import { ClusterdError } from '../errors.js';
import { noSuchWorker } from '../control/status-codes.js';

export class MasterControl implements ControlOperations {
  readonly #supervisor: Supervisor;
  readonly #operations: Operations;
  readonly #logs: LogSink;
  /**
   * The last blocked report per worker id, with the code generation of the worker it was of. A worker
   * caught blocked is replaced, and the report must outlive it for `status`; so every change is scanned
   * while the old process is still live (it drains after its successor is ready, which is itself a
   * change). A worker of a later generation (a reload: new code) no longer shows it: it was kept for
   * good, through restarts and a reload to code that no longer blocked.
   */
  readonly #blocked = new Map<number, { report: BlockedInfo; generation: number }>();
  readonly #unsubscribe: () => void;
  /** How the stop went, once asked for (stopped()). */
  #stopped: Promise<StopOutcome> | null = null;

  constructor({ supervisor, operations, logs }: { supervisor: Supervisor; operations: Operations; logs: LogSink }) {
    this.#supervisor = supervisor;
    this.#operations = operations;
    this.#logs = logs;
    this.#unsubscribe = supervisor.onChange(() => this.#collectBlocked());
  }

  reload({ parallel }: { parallel: number }, onProgress: (progress: OperationProgress) => void, who = 'the control plane'): Promise<{ generation: number; replaced: number }> {
    return this.#logged('reload', `reload (${parallel} at a time)`, who, () => this.#operations.reload({ parallel, onProgress }));
  }

  async restart(id: number, onProgress: (progress: OperationProgress) => void, who = 'the control plane'): Promise<{ pid: number }> {
    // `started` once a successor is forked: a failure after (the id scaled away, ERR_CLUSTERD_NO_WORKER
    // like an unknown id) happened to the cluster, not to a mistaken request (the dashboard marks it).
    const data: EventData = { worker: id, pid: null };
    const follow = (progress: OperationProgress): void => {
      data.started = true;
      onProgress(progress);
    };
    const worker = await this.#logged('restart', `restart of worker ${id}`, who, () => this.#operations.restart(id, follow), data);
    return { pid: worker.pid };
  }

  scale(spec: string, who = 'the control plane'): Promise<ScaleOutcome> {
    return this.#logged('scale', `scale to ${spec}`, who, () => this.#operations.scale(spec));
  }

  /** Logs an operation as asked, then how it ended (operations are master events: who did what, when). */
  async #logged<T>(operation: string, what: string, who: string, run: () => Promise<T>, data: EventData = {}): Promise<T> {
    this.#logs.event('operation-requested', `${what} asked by ${who}`, { operation, who, ...data });
    try {
      const result = await run();
      this.#logs.event('operation', `${what} done`, { operation, who, ...data });
      return result;
    } catch (error) {
      // Its code says why (a worker id that does not exist, a bad count: the asker's mistake; busy: another runs).
      const code = error instanceof ClusterdError ? { code: error.code } : {};
      this.#logs.event('operation-failed', `${what} failed: ${(error as Error).message}`, { operation, who, ...data, ...code }, 'error');
      throw error;
    }
  }

  /**
   * Starts a graceful stop, unless one is under way (a second supervisor.stop() would force it:
   * that stays a second SIGINT's job). Returns --grace so the caller knows how long to wait.
   */
  stop(who = 'the control plane'): { graceMs: number } {
    const { phase } = this.#supervisor;
    if (phase === 'booting' || phase === 'running') {
      this.#logs.event('operation-requested', `stop asked by ${who}`, { operation: 'stop', who });
      this.#supervisor.stop();
    }
    return { graceMs: this.#supervisor.config.graceMs };
  }

  /**
   * Resolves once the cluster has stopped, with its exit code and the workers it killed rather than
   * drained. One promise for every waiting Stop: a listener each, a dozen clients stopping at once
   * passed EventEmitter's limit of ten (a MaxListenersExceededWarning in the master's log).
   */
  stopped(): Promise<StopOutcome> {
    this.#stopped ??= this.#supervisor.stopOutcome
      ? Promise.resolve(this.#supervisor.stopOutcome)
      : new Promise((resolve) => this.#supervisor.once('stopped', (_code: number, stopped: StopOutcome) => resolve(stopped)));
    return this.#stopped;
  }

  async stack(id: number): Promise<StackReport> {
    const worker = this.#worker(id);
    // Feature-detected: a build whose workers cannot capture stacks says so instead of failing.
    if (typeof worker.requestStack !== 'function') {
      throw new ClusterdError('ERR_CLUSTERD_UNAVAILABLE', 'stack capture is not available in this build');
    }
    return worker.requestStack();
  }

  /**
   * A CPU profile of worker `id` through its inspector. A loop that is blocked now is not profiled
   * (the profile would only repeat the blocking function): its stack comes back instead.
   */
  async profile(id: number, { durationMs, intervalUs, signal }: { durationMs: number; intervalUs: number; signal?: AbortSignal }): Promise<ProfileOutcome> {
    const worker = this.#worker(id);
    const blocked = await blockedStack(worker);
    if (blocked) return { blocked };
    // Said only of a profile that starts: one asked while another runs is refused (BUSY) to its asker.
    if (!worker.measuring.profile) this.#logs.event('profile', `worker ${id} (pid ${worker.pid}): taking a CPU profile for ${durationMs} ms`, { worker: id, pid: worker.pid, durationMs });
    try {
      const profile = await worker.profile(durationMs, intervalUs, signal);
      if (worker.exited) throw exitedDuring(worker, 'the profile');
      if (signal?.aborted) this.#logs.event('profile-cancelled', `worker ${id} (pid ${worker.pid}): CPU profile stopped early: its asker went away`, { worker: id, pid: worker.pid });
      return { profile };
    } catch (error) {
      // A worker that exits as the profile starts takes its inspector with it: the connection is refused
      // before the master has seen the exit, so a failure of the inspector waits a moment for it.
      if (worker.exited || isExited(error) || (inspectorFailed(error) && (await exitsWithin(worker, EXIT_WAIT_MS)))) throw exitedDuring(worker, 'the profile');
      throw error;
    }
  }

  /** Where worker `id`'s loop spends `durationMs`; a loop blocked now (or all along) gives its stack instead. */
  async loop(id: number, { durationMs, signal }: { durationMs: number; signal?: AbortSignal }): Promise<LoopOutcome> {
    const worker = this.#worker(id);
    const blocked = await blockedStack(worker);
    if (blocked) return { blocked };
    if (!worker.measuring.loop) this.#logs.event('loop', `worker ${id} (pid ${worker.pid}): measuring its event loop for ${durationMs} ms`, { worker: id, pid: worker.pid, durationMs });
    try {
      const breakdown = await worker.measureLoop(durationMs, signal);
      if (signal?.aborted) this.#logs.event('loop-cancelled', `worker ${id} (pid ${worker.pid}): loop measurement stopped early: its asker went away`, { worker: id, pid: worker.pid });
      return { breakdown };
    } catch (error) {
      if (worker.exited || isExited(error)) throw exitedDuring(worker, 'the measurement');
      const stuck = await blockedStack(worker);
      if (stuck) return { blocked: stuck };
      throw error;
    }
  }

  lastBlocked(id: number): BlockedInfo | null {
    this.#collectBlocked();
    const kept = this.#blocked.get(id);
    const serving = this.#supervisor.slot(id)?.worker;
    if (kept && serving && serving.generation > kept.generation) this.#blocked.delete(id);
    return this.#blocked.get(id)?.report ?? null;
  }

  recentLogs(worker?: number): LogEntry[] {
    const lines = this.#logs.recent();
    return worker === undefined ? lines : lines.filter((line) => line.worker === worker);
  }

  followLogs(listener: (entry: LogEntry) => void): () => void {
    return this.#logs.subscribe(listener);
  }

  /** Stops following the supervisor (for a master that outlives its control plane, and tests). */
  dispose(): void {
    this.#unsubscribe();
  }

  #worker(id: number): WorkerProcess {
    const slot = this.#supervisor.slot(id);
    if (slot?.worker) return slot.worker;
    // The id is the cluster's, but no process serves it now: say what it waits for, not that it does not exist.
    if (slot?.successor) throw new ClusterdError('ERR_CLUSTERD_WORKER_GONE', `worker ${id} has no process serving now: it exited, and its replacement (pid ${slot.successor.pid}) is starting`);
    if (slot?.restartAt != null) {
      const waiting = { id, crashes: Math.max(1, slot.attempt), restartInMs: Math.max(0, slot.restartAt - Date.now()) };
      throw new ClusterdError('ERR_CLUSTERD_WORKER_GONE', `worker ${id} has no process now: it is ${waitingToRestart(waiting, this.#supervisor.config.name)}`);
    }
    throw noSuchWorker(id, this.#supervisor.config.name, this.#supervisor.ids());
  }

  #collectBlocked(): void {
    for (const worker of this.#supervisor.processes()) {
      const report = worker.lastBlocked;
      if (!report) continue;
      const kept = this.#blocked.get(worker.id);
      if (!kept || kept.report.time < report.time) this.#blocked.set(worker.id, { report, generation: worker.generation });
    }
  }
}

/** The stack of a worker whose loop is blocked now, or null when it turns. */
async function blockedStack(worker: WorkerProcess): Promise<BlockedStack | null> {
  if (!worker.blocked) return null;
  const { stack } = await worker.requestStack();
  return { state: 'blocked', stack, blockedMs: worker.silentMs };
}

/** How long a failure of a worker's inspector waits for the worker's exit, which would explain it. */
const EXIT_WAIT_MS = 1000;

function inspectorFailed(error: unknown): boolean {
  return error instanceof ClusterdError && error.code === 'ERR_CLUSTERD_INSPECTOR';
}

/** True once the worker has exited, within `ms`. */
function exitsWithin(worker: WorkerProcess, ms: number): Promise<boolean> {
  if (worker.exited) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      worker.off('exit', onExit);
      resolve(worker.exited);
    }, ms);
    worker.once('exit', onExit);
  });
}

function isExited(error: unknown): boolean {
  return error instanceof ClusterdError && error.code === 'ERR_CLUSTERD_WORKER_EXITED';
}

function exitedDuring(worker: WorkerProcess, what: string): ClusterdError {
  return new ClusterdError('ERR_CLUSTERD_WORKER_EXITED', `worker ${worker.id} (pid ${worker.pid}) exited during ${what}`);
}
