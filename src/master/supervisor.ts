// The supervisor owns the desired state (how many workers, of which generation) and one
// reconcile step that makes the running set match it. Exits, restarts and stops are all
// changes to that state followed by reconcile(), never bespoke code paths.
import { EventEmitter } from 'node:events';
import { DEFAULT_BACKOFF, backoffDelay, type BackoffPolicy } from './backoff.js';
import type { BalanceMode } from './balancers/index.js';
import type { Entry } from './entry.js';
import { Listeners, type ListenFailure } from './listeners.js';
import type { LogSink } from './logs.js';
import { WorkerProcess, type WorkerExit } from './worker.js';
import { BootError, ClusterdError, ListenError } from '../errors.js';
import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import type { SockName } from '../protocol.js';
import type { ClusterStatus, ControlSource, WorkerStatus } from './status.js';

export interface ClusterConfig {
  name: string;
  entry: Entry;
  args: readonly string[];
  instances: number;
  balance: BalanceMode;
  waitReady: boolean;
  /** How long a worker may take from fork to ready. */
  listenTimeoutMs: number;
  /** How long a stopping worker may drain before it is killed. */
  graceMs: number;
  /** Failed boots in a row (no worker got ready in between) before the master gives up. */
  maxBootFailures: number;
  /** How often workers report loop stats, in ms; 0 turns them off. */
  statsIntervalMs: number;
  backoff?: BackoffPolicy;
  logs: LogSink;
}

interface Slot {
  readonly id: number;
  worker: WorkerProcess | null;
  /** Restarts of this slot so far (shown by status). */
  restarts: number;
  /** Consecutive quick failures, drives the backoff. */
  attempt: number;
  restartTimer: NodeJS.Timeout | null;
  bootTimer: NodeJS.Timeout | null;
}

type Phase = 'booting' | 'running' | 'stopping' | 'stopped';

/**
 * Events: 'ready' (every worker ready for the first time), 'fatal' (ClusterdError: the app
 * cannot run; the cluster is being stopped), 'stopped' (exit code), 'change' (a sample arrived
 * or a worker changed state: what the control plane's Watch follows).
 */
export class Supervisor extends EventEmitter implements ControlSource {
  readonly config: ClusterConfig;
  readonly sockets: Listeners;
  readonly startedAt = Date.now();
  #phase: Phase = 'booting';
  #desired: number;
  #generation = 1;
  readonly #slots = new Map<number, Slot>();
  #bootFailures = 0;
  readonly #listenFailures = new Map<WorkerProcess, ListenFailure>();
  #exitCode: ExitCodeValue = ExitCode.OK;
  #graceTimer: NodeJS.Timeout | null = null;
  readonly #backoff: BackoffPolicy;

  constructor(config: ClusterConfig) {
    super();
    this.config = config;
    this.#desired = config.instances;
    this.#backoff = config.backoff ?? DEFAULT_BACKOFF;
    this.sockets = new Listeners({
      mode: config.balance,
      onFailure: (failure, worker) => this.#listenFailures.set(worker as WorkerProcess, failure),
    });
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** The live workers, by slot id. */
  workers(): WorkerProcess[] {
    return [...this.#slots.values()].flatMap((slot) => (slot.worker ? [slot.worker] : []));
  }

  restartsOf(id: number): number {
    return this.#slots.get(id)?.restarts ?? 0;
  }

  addresses(): SockName[] {
    return this.sockets.addresses();
  }

  start(): void {
    this.#reconcile();
  }

  onChange(listener: () => void): () => void {
    this.on('change', listener);
    return () => this.off('change', listener);
  }

  /** A snapshot of the cluster for the control plane. */
  status(): ClusterStatus {
    const now = Date.now();
    const workers: WorkerStatus[] = [...this.#slots.values()]
      .filter((slot) => slot.worker)
      .map(({ worker, restarts }) => ({
        id: worker!.id,
        pid: worker!.pid,
        state: worker!.state,
        generation: worker!.generation,
        startedAt: worker!.startedAt,
        uptimeMs: now - worker!.startedAt,
        restarts,
        sample: worker!.history.at(-1) ?? null,
        history: [...worker!.history],
      }));
    const sum = (pick: (worker: WorkerStatus) => number): number => workers.reduce((total, worker) => total + pick(worker), 0);
    return {
      name: this.config.name,
      masterPid: process.pid,
      startedAt: this.startedAt,
      uptimeMs: now - this.startedAt,
      entry: this.config.entry.path,
      balance: this.config.balance,
      statsIntervalMs: this.config.statsIntervalMs,
      workers,
      totals: {
        workers: workers.length,
        ready: workers.filter((worker) => worker.state === 'ready').length,
        rps: sum((worker) => worker.sample?.http.rps ?? 0),
        inflight: sum((worker) => worker.sample?.http.inflight ?? 0),
        connections: sum((worker) => worker.sample?.http.connections ?? 0),
        rss: sum((worker) => worker.sample?.memory.rss ?? 0),
        restarts: [...this.#slots.values()].reduce((total, slot) => total + slot.restarts, 0),
      },
    };
  }

  /**
   * Graceful stop: stop accepting, let every worker drain, kill those still busy after
   * --grace. A second call forces it: every worker is killed at once.
   */
  stop(exitCode: ExitCodeValue = ExitCode.OK): void {
    if (this.#phase === 'stopped') return;
    if (this.#phase === 'stopping') {
      this.#exitCode = this.#exitCode === ExitCode.OK ? ExitCode.FORCED : this.#exitCode;
      for (const worker of this.workers()) worker.kill();
      return;
    }
    this.#phase = 'stopping';
    this.#exitCode = exitCode;
    for (const slot of this.#slots.values()) this.#clearTimers(slot);
    void this.sockets.closeAll();
    for (const worker of this.workers()) worker.stop();
    this.#graceTimer = setTimeout(() => {
      if (this.workers().length === 0) return;
      if (this.#exitCode === ExitCode.OK) this.#exitCode = ExitCode.GRACE_EXPIRED;
      for (const worker of this.workers()) worker.kill();
    }, this.config.graceMs);
    this.#finishIfStopped();
  }

  /** Makes the running set match the desired one. */
  #reconcile(): void {
    if (this.#phase === 'stopping' || this.#phase === 'stopped') return;
    for (let id = 1; id <= this.#desired; id++) {
      let slot = this.#slots.get(id);
      if (!slot) {
        slot = { id, worker: null, restarts: 0, attempt: 0, restartTimer: null, bootTimer: null };
        this.#slots.set(id, slot);
      }
      if (!slot.worker && !slot.restartTimer) this.#spawn(slot);
    }
  }

  #spawn(slot: Slot): void {
    const { config } = this;
    const worker = new WorkerProcess({
      id: slot.id,
      generation: this.#generation,
      clusterName: config.name,
      entry: config.entry,
      args: config.args,
      settings: { waitReady: config.waitReady, statsIntervalMs: config.statsIntervalMs },
      listeners: this.sockets,
      logs: config.logs,
    });
    slot.worker = worker;
    slot.bootTimer = setTimeout(() => {
      slot.bootTimer = null;
      if (worker.state !== 'starting') return;
      worker.stderrTail.push(`(clusterd: not ready after ${config.listenTimeoutMs} ms; see --listen-timeout)`);
      worker.kill();
    }, config.listenTimeoutMs);
    worker.once('ready', () => this.#onReady(slot, worker));
    worker.on('sample', () => this.emit('change'));
    worker.once('exit', (exit: WorkerExit) => this.#onExit(slot, worker, exit));
  }

  #onReady(slot: Slot, worker: WorkerProcess): void {
    if (slot.bootTimer) clearTimeout(slot.bootTimer);
    slot.bootTimer = null;
    this.#bootFailures = 0;
    this.emit('change');
    if (this.#phase === 'booting' && this.workers().length === this.#desired && this.workers().every((w) => w.state === 'ready')) {
      this.#phase = 'running';
      this.emit('ready');
    }
    void worker;
  }

  #onExit(slot: Slot, worker: WorkerProcess, exit: WorkerExit): void {
    if (slot.bootTimer) clearTimeout(slot.bootTimer);
    slot.bootTimer = null;
    if (slot.worker === worker) slot.worker = null;
    this.emit('change');
    const listenFailure = this.#listenFailures.get(worker);
    this.#listenFailures.delete(worker);

    if (this.#phase === 'stopping') {
      this.#finishIfStopped();
      return;
    }

    const uptime = Date.now() - (worker.readyAt ?? worker.startedAt);
    if (exit.from === 'starting') {
      this.#bootFailures++;
      const reason = describeExit(exit, worker);
      if (listenFailure) {
        this.#fatal(new ListenError(describeListenFailure(listenFailure)));
        return;
      }
      if (this.#bootFailures >= this.config.maxBootFailures) {
        this.#fatal(
          new BootError(
            `app failed to boot ${this.#bootFailures} times in a row; last: worker ${worker.id} ${reason}`,
            worker.stderrTail,
          ),
        );
        return;
      }
      this.config.logs.event('boot-failed', `worker ${worker.id} failed to boot: ${reason}`, { worker: worker.id, code: exit.code, signal: exit.signal }, 'warn');
    } else {
      this.config.logs.event('worker-exit', `worker ${worker.id} (pid ${worker.pid}) ${describeExit(exit, worker)}; restarting`, {
        worker: worker.id,
        code: exit.code,
        signal: exit.signal,
      }, 'warn');
    }
    slot.attempt = uptime >= this.#backoff.resetAfterMs ? 0 : slot.attempt + 1;
    slot.restarts++;
    const delay = backoffDelay(this.#backoff, slot.attempt - 1);
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      this.#reconcile();
    }, delay);
  }

  #fatal(error: ClusterdError): void {
    this.emit('fatal', error);
    this.stop(error.exitCode);
  }

  #finishIfStopped(): void {
    if (this.#phase !== 'stopping' || this.workers().length > 0) return;
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#graceTimer = null;
    this.#phase = 'stopped';
    this.emit('stopped', this.#exitCode);
  }

  #clearTimers(slot: Slot): void {
    if (slot.restartTimer) clearTimeout(slot.restartTimer);
    slot.restartTimer = null;
  }
}

function describeExit(exit: WorkerExit, worker: WorkerProcess): string {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const when = exit.from === 'starting' ? ' before it was ready' : '';
  const last = lastErrorLine(worker.stderrTail);
  return `${how}${when}${last ? `: ${last}` : ''}`;
}

/** The line of a stack trace that says what went wrong (`TypeError: ...`), else the last line. */
export function lastErrorLine(tail: readonly string[]): string {
  const lines = tail.map((line) => line.trim()).filter(Boolean);
  const error = [...lines].reverse().find((line) => /^(\w*Error|Error)\b.*:/.test(line) || /^\(clusterd:/.test(line));
  return error ?? lines.at(-1) ?? '';
}

function describeListenFailure({ query, code }: ListenFailure): string {
  const where = `${query.address ?? '*'}:${query.port}`;
  const why =
    code === 'EADDRINUSE' ? 'address already in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'address not available' : code;
  return `cannot listen on port ${query.port} (${where}): ${why} (${code})`;
}
