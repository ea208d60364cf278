// The master's side of the control plane's operations: ControlOperations over the supervisor, its
// Operations (reload, restart, scale) and the log ring. The control plane (src/control) knows only
// the interface; this adapter is the one place that knows where each answer comes from.
import type { LogSink } from './logs.js';
import type { Operations } from './operations.js';
import type { ControlOperations, LogEntry, OperationProgress, StackReport } from './status.js';
import type { Supervisor } from './supervisor.js';
import type { BlockedInfo } from './status.js';
import type { WorkerProcess } from './worker.js';
import { ClusterdError } from '../errors.js';
import { noSuchWorker } from '../control/status-codes.js';

/** How long `clusterd stack` waits for a worker's watchdog thread to send the stack. */
export const STACK_TIMEOUT_MS = 2_000;

export class MasterControl implements ControlOperations {
  readonly #supervisor: Supervisor;
  readonly #operations: Operations;
  readonly #logs: LogSink;
  /**
   * The last blocked report per worker id. A worker caught blocked is replaced, and the report
   * must outlive it for `status`; so every change is scanned while the old process is still
   * live (it drains after its successor is ready, which is itself a change).
   */
  readonly #blocked = new Map<number, BlockedInfo>();
  readonly #unsubscribe: () => void;

  constructor({ supervisor, operations, logs }: { supervisor: Supervisor; operations: Operations; logs: LogSink }) {
    this.#supervisor = supervisor;
    this.#operations = operations;
    this.#logs = logs;
    this.#unsubscribe = supervisor.onChange(() => this.#collectBlocked());
  }

  reload({ parallel }: { parallel: number }, onProgress: (progress: OperationProgress) => void): Promise<{ generation: number; replaced: number }> {
    return this.#operations.reload({ parallel, onProgress });
  }

  async restart(id: number, onProgress: (progress: OperationProgress) => void): Promise<{ pid: number }> {
    const worker = await this.#operations.restart(id, onProgress);
    return { pid: worker.pid };
  }

  scale(spec: string): Promise<number> {
    return this.#operations.scale(spec);
  }

  /**
   * Starts a graceful stop, unless one is under way (a second supervisor.stop() would force it:
   * that stays a second SIGINT's job). Returns --grace so the caller knows how long to wait.
   */
  stop(): { graceMs: number } {
    const { phase } = this.#supervisor;
    if (phase === 'booting' || phase === 'running') this.#supervisor.stop();
    return { graceMs: this.#supervisor.config.graceMs };
  }

  async stack(id: number): Promise<StackReport> {
    const worker = this.#worker(id);
    // Feature-detected: a build whose workers cannot capture stacks says so instead of failing.
    if (typeof worker.requestStack !== 'function') {
      throw new ClusterdError('ERR_CLUSTERD_UNAVAILABLE', 'stack capture is not available in this build');
    }
    return worker.requestStack(STACK_TIMEOUT_MS);
  }

  lastBlocked(id: number): BlockedInfo | null {
    this.#collectBlocked();
    return this.#blocked.get(id) ?? null;
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
    const workers = this.#supervisor.workers();
    const worker = workers.find((candidate) => candidate.id === id);
    if (!worker) throw noSuchWorker(id, this.#supervisor.config.name, workers.map((w) => w.id));
    return worker;
  }

  #collectBlocked(): void {
    for (const worker of this.#supervisor.processes()) {
      const report = worker.lastBlocked;
      if (!report) continue;
      const kept = this.#blocked.get(worker.id);
      if (!kept || kept.time < report.time) this.#blocked.set(worker.id, report);
    }
  }
}
