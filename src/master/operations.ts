// The operator's actions on a running cluster (reload, restart one worker, scale), each a
// change of the supervisor's desired state carried out without dropping a request.
import { existsSync, statSync } from 'node:fs';
import type { OperationProgress, ScaleOutcome } from './status.js';
import { killedOf } from './worker-killer.js';
import type { ReplacePhase } from './want.js';
import type { Supervisor } from './supervisor.js';
import { describeExit } from './exit-report.js';
import type { WorkerExit, WorkerProcess } from './worker.js';
import { isUp } from './worker-state.js';
import { recheckTsconfig } from './typescript.js';
import { BootError, ClusterdError, TypeScriptError, UsageError } from '../errors.js';
import { MAX_INSTANCES } from '../options.js';
import { noSuchWorker } from '../control/status-codes.js';


export interface ReloadResult {
  generation: number;
  replaced: number;
}

/** Serialises replacements: one reload or restart at a time; a second request is refused. */
export class Operations {
  readonly #supervisor: Supervisor;
  #busy: { what: string; since: number } | null = null;
  /** Told when a reload starts and ends, however it was asked for (systemd's RELOADING=1 / READY=1). */
  readonly #onReload: (phase: 'start' | 'end') => void;
  /** Whether the cluster is going away: stopping, or (the master knows) waiting out --shutdown-delay first. */
  readonly #stopping: () => boolean;

  constructor(
    supervisor: Supervisor,
    { onReload = () => {}, stopping = () => supervisor.phase === 'stopping' || supervisor.phase === 'stopped' }: { onReload?: (phase: 'start' | 'end') => void; stopping?: () => boolean } = {},
  ) {
    this.#supervisor = supervisor;
    this.#onReload = onReload;
    this.#stopping = stopping;
  }

  get busy(): boolean {
    return this.#busy !== null;
  }

  /**
   * Rolling reload: every worker is replaced by one of the next generation, `parallel` at a
   * time, each new worker ready before its old one drains. Stops at the first replacement
   * that fails to boot, leaving the remaining old workers serving.
   */
  async reload({ parallel = 1, onProgress = () => {} }: { parallel?: number; onProgress?: (progress: OperationProgress) => void } = {}): Promise<ReloadResult> {
    if (!Number.isInteger(parallel) || parallel < 1) {
      throw new UsageError(`Expected \`--parallel\` to be a positive integer, got \`${parallel}\``);
    }
    return this.#exclusive('a reload', async () => {
      this.#onReload('start');
      try {
        return await this.#reload(parallel, onProgress);
      } finally {
        this.#onReload('end');
      }
    });
  }

  async #reload(parallel: number, onProgress: (progress: OperationProgress) => void): Promise<ReloadResult> {
    const supervisor = this.#supervisor;
    const previous = supervisor.generation;
    const generation = supervisor.nextGeneration();
    const queue = supervisor.workers().map((worker) => worker.id);
    let replaced = 0;
    let failure: unknown = null;
    // A new worker that dies once ready (a deploy that fails on its first request, or on a late
    // connect) stops the reload as a failed boot does: going on drained the old, good workers one by
    // one and left none serving, and the reload still said it had succeeded.
    const watched = new Set<WorkerProcess>();
    const watch = (id: number, worker: WorkerProcess): void => {
      if (watched.has(worker) || worker.generation !== generation) return;
      watched.add(worker);
      worker.once('exit', (exit: WorkerExit) => {
        // Stopped on purpose (a scale down, a restart, the cluster's stop) or a failed boot (replace() rejects for it).
        if (exit.from === 'stopping' || exit.from === 'starting' || failure !== null || finished) return;
        failure = new BootError(`worker ${id}'s new generation (pid ${worker.pid}) failed after it was ready: it ${describeExit(exit, worker)}`, worker.lastOutput());
        onProgress({ id, phase: 'failed', pid: worker.pid, generation, message: (failure as Error).message });
        // Replacements still booting are called off: their old workers serve on.
        for (const other of inFlight) if (supervisor.abandonReplacement(other)) abandoned.add(other);
      });
    };
    const inFlight = new Set<number>();
    const abandoned = new Set<number>();
    // After the reload, a new worker's exit is a crash like any, the supervisor's to restart and say.
    let finished = false;
    const lane = async (): Promise<void> => {
      // The failure check comes first: a lane must not take an id it will not replace.
      while (failure === null) {
        // A stop (or --shutdown-delay) begun meanwhile: a cluster going away forks no more of them.
        if (this.#stopping()) {
          failure = new ClusterdError('ERR_CLUSTERD_STOPPING', 'the cluster is stopping');
          break;
        }
        const id = queue.shift();
        if (id === undefined) break;
        inFlight.add(id);
        const step = steps(id);
        try {
          await supervisor.replace(id, {
            generation,
            onProgress: (phase, worker) => {
              if (phase === 'starting') watch(id, worker);
              onProgress(step(phase, worker));
            },
          });
          replaced++;
        } catch (error) {
          // Gone since the reload began: a scale took the id away, or it is being restarted after an
          // exit, from the code on disk now. Nothing of the old code is left there to replace.
          if (error instanceof ClusterdError && error.code === 'ERR_CLUSTERD_NO_WORKER') continue;
          if (abandoned.has(id)) {
            onProgress({ id, phase: 'failed', pid: 0, generation, message: `worker ${id}: its replacement was called off; the old worker serves on` });
            continue;
          }
          failure ??= error;
          onProgress({ id, phase: 'failed', pid: 0, generation, message: error instanceof Error ? error.message : String(error) });
        } finally {
          inFlight.delete(id);
        }
      }
    };
    const total = queue.length;
    await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, lane));
    finished = true;
    if (failure !== null) {
      // New code that never booted is not the cluster's generation; workers that did boot keep theirs.
      if (replaced === 0) supervisor.revertGeneration(previous);
      if (failure instanceof BootError) {
        throw new BootError(`reload failed after ${replaced} of ${total} workers: ${failure.message}`, failure.lastOutput);
      }
      throw failure;
    }
    return { generation, replaced };
  }

  /**
   * Replaces one worker the same safe way (same generation). An id with no process now, waiting out
   * its backoff after crashes, is started at once: it is the cluster's still (status counts it).
   */
  async restart(id: number, onProgress: (progress: OperationProgress) => void = () => {}): Promise<WorkerProcess> {
    if (!this.#supervisor.slot(id)) throw noSuchWorker(id, this.#supervisor.config.name, this.#supervisor.ids());
    const step = steps(id);
    return this.#exclusive(`a restart of worker ${id}`, () =>
      this.#supervisor.replace(id, { retire: this.#supervisor.slot(id)?.worker ?? undefined, onProgress: (phase, worker) => onProgress(step(phase, worker)) }),
    );
  }

  /**
   * `N`, `+K` or `-K` workers; one to MAX_INSTANCES. Resolves once the new count is ready and the
   * workers taken away have exited (drained, or killed at --grace: those it names). A worker added that fails to
   * boot (the entry on disk is broken, a fork the process limit refuses) takes the scale back to the
   * count before it, as a reload keeps the old workers: the call fails with why (BootError) and the
   * workers that served go on. A later scale overtakes this one (BUSY).
   */
  async scale(spec: string): Promise<ScaleOutcome> {
    const supervisor = this.#supervisor;
    const match = /^([+-]?)(\d+)$/.exec(spec.trim());
    if (!match) throw new UsageError(`Expected a worker count N, +K or -K, got \`${spec}\``);
    const amount = Number(match[2]);
    const before = supervisor.desired;
    const target = match[1] === '+' ? before + amount : match[1] === '-' ? before - amount : amount;
    if (target < 1) {
      throw new UsageError(`cannot scale ${supervisor.config.name} to ${target} workers: at least one worker must run (now ${before})`);
    }
    // The same cap as `-i`, for requests from any client and for SIGTTIN.
    if (target > MAX_INSTANCES) {
      throw new UsageError(`cannot scale ${supervisor.config.name} to ${target} workers: at most ${MAX_INSTANCES} (now ${before})`);
    }
    this.#refuseWhileStopping();
    if (target > before) this.#checkEntry();
    supervisor.scale(target);
    // Every process above the new count drains now, this scale's or an earlier one's still draining:
    // the answer waits for them all, and names those killed at --grace.
    const takenAway = supervisor.processes().filter((worker) => worker.id > target);
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        off();
        supervisor.off('boot-failed', onBootFailed);
        if (error) reject(error);
        else resolve();
      };
      const check = (): void => {
        if (supervisor.phase === 'stopping' || supervisor.phase === 'stopped') {
          settle(new ClusterdError('ERR_CLUSTERD_STOPPING', 'the cluster is stopping'));
          return;
        }
        if (supervisor.desired !== target) {
          settle(new ClusterdError('ERR_CLUSTERD_BUSY', `overtaken by a scale to ${supervisor.desired} workers before ${target} were ready`));
          return;
        }
        const serving = supervisor.workers();
        // The workers scaled away have drained and exited too, as a reload's old ones have when it
        // is done: it answered while they still drained, and a status then listed them `stopping`.
        const leaving = supervisor.processes().some((worker) => worker.id > target);
        // Booted: a worker whose app closed its servers does not hold a scale up for good.
        if (serving.length === target && serving.every((worker) => isUp(worker.state)) && !leaving) settle();
      };
      const onBootFailed = (id: number, error: BootError): void => {
        if (id <= before || supervisor.desired !== target) return;
        settle(new BootError(`${error.message}; scaled back to ${before} ${before === 1 ? 'worker' : 'workers'}`, error.lastOutput));
        supervisor.scale(before);
      };
      const off = supervisor.onChange(check);
      supervisor.on('boot-failed', onBootFailed);
      check();
    });
    return { workers: target, killed: killedOf(takenAway) };
  }

  async #exclusive<T>(what: string, run: () => Promise<T>): Promise<T> {
    this.#refuseWhileStopping();
    if (this.#busy) {
      const seconds = Math.round((Date.now() - this.#busy.since) / 1000);
      throw new ClusterdError('ERR_CLUSTERD_BUSY', `refused: ${this.#busy.what} is in progress (started ${seconds}s ago); try again when it finishes`, );
    }
    this.#checkEntry();
    this.#busy = { what, since: Date.now() };
    try {
      return await run();
    } finally {
      this.#busy = null;
    }
  }

  /**
   * A cluster going away starts nothing: workers forked now would serve a pod or unit on its way
   * out. During --shutdown-delay the supervisor still runs and would take a reload, whose end said
   * READY=1 to systemd after the SIGTERM.
   */
  #refuseWhileStopping(): void {
    if (this.#stopping()) throw new ClusterdError('ERR_CLUSTERD_STOPPING', 'the cluster is stopping');
  }

  /**
   * Every operation forks workers that load the entry anew: one that is gone (a release deleted,
   * the file moved) would fail each of them with Node's stack; say it once, before anything changes.
   * So is a TypeScript entry's tsconfig.json that no longer parses, or whose `extends` is gone: each
   * worker would read it as empty and boot without its options (decorator metadata), and serve.
   */
  #checkEntry(): void {
    const { path, cwd } = this.#supervisor.config.entry;
    let why: string | null = null;
    try {
      if (!statSync(cwd).isDirectory()) why = `the working directory ${cwd} is not a directory`;
      else if (!statSync(path).isFile()) why = `the entry ${path} is not a file`;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      why = code === 'ENOENT' ? `${existsSync(cwd) ? `the entry ${path}` : `the working directory ${cwd}`} does not exist` : `cannot read the entry ${path} (${code})`;
    }
    if (why !== null) throw new BootError(`${why} (moved or deleted since the cluster started?): nothing was replaced`, []);
    const { tsconfigPath } = this.#supervisor.config.entry;
    if (tsconfigPath === null) return;
    try {
      recheckTsconfig(tsconfigPath);
    } catch (error) {
      // The line `start` gives for the same file; the exit code of a reload whose new code cannot
      // boot (the old workers serve on), as for the entry gone.
      if (error instanceof TypeScriptError) throw new BootError(error.message, []);
      throw error;
    }
  }

}

/**
 * The steps of one id's replacement for the operator: its 'replaced' step names the old worker when
 * that was killed at --grace rather than drained (the one its 'draining' step named).
 */
function steps(id: number): (phase: ReplacePhase, worker: WorkerProcess) => OperationProgress {
  let old: WorkerProcess | null = null;
  return (phase, worker) => {
    if (phase === 'draining') old = worker;
    const progress = describe(id, phase, worker);
    const killed = phase === 'replaced' ? old?.killReport : null;
    return killed ? { ...progress, killed } : progress;
  };
}

function describe(id: number, phase: ReplacePhase, worker: WorkerProcess): OperationProgress {
  const message =
    phase === 'starting'
      ? `worker ${id}: starting generation ${worker.generation} (pid ${worker.pid})`
      : phase === 'draining'
        ? `worker ${id}: draining pid ${worker.pid}`
        : `worker ${id}: replaced by pid ${worker.pid}`;
  return { id, phase, pid: worker.pid, generation: worker.generation, message };
}
