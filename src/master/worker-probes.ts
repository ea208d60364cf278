// What the operator asks of one worker's main thread from outside it: its JavaScript stack and a CPU
// profile, through its inspector (which answers while the loop is blocked), and where its loop spends
// its time (`clusterd loop`, measured in the worker: LoopRequests); and whether its loop is blocked
// now, which `stack` reports, `loop` waits on, and status and /readyz count. The WorkerProcess owns
// one, answers its public requestStack(), profile(), measureLoop() and blocked with it, and hands it
// the app's SIGUSR1 listener when the worker's runtime reports one.
import { ClusterdError } from '../errors.js';
import type { CpuProfile, LoopBreakdown } from '../loop/types.js';
import type { MasterMessage } from '../protocol.js';
import { CAPTURE_TIMEOUT_MS, type WorkerInspector } from './inspector.js';
import type { LoopRequests } from './loop-requests.js';
import type { LogSink } from './logs.js';
import type { StackReport } from './status.js';

/** A silence this long (or --watchdog, when shorter) reads as `blocked`: `stack`, `profile`, `loop`, /readyz. */
const BLOCKED_FOR_STACK_MS = 1000;

/** What WorkerProbes reads of its worker, and how it speaks to it. */
export interface ProbedWorker {
  readonly id: number;
  readonly pid: number;
  readonly logs: LogSink;
  /** --watchdog, in ms (0: off). */
  readonly watchdogMs: number;
  /** Its `clusterd loop` windows. */
  readonly loops: Pick<LoopRequests, 'measure' | 'measuring'>;
  /** Its inspector; null for a worker whose process never started. */
  inspector(): WorkerInspector | null;
  exited(): boolean;
  /** How long its loop has been silent, in ms (0 when it beats, or sends no heartbeat). */
  silentMs(): number;
  send(message: MasterMessage): boolean;
}

/** The stack, profile and loop requests of one worker, and whether its loop is blocked now. */
export class WorkerProbes {
  readonly #worker: ProbedWorker;

  constructor(worker: ProbedWorker) {
    this.#worker = worker;
  }

  /** The main thread's JavaScript stack now, through the worker's inspector (works while its loop is blocked). */
  async stack(): Promise<StackReport> {
    const worker = this.#worker;
    const inspector = worker.inspector();
    if (inspector === null || worker.exited()) throw new ClusterdError('ERR_CLUSTERD_WORKER_GONE', `worker ${worker.id} (pid ${worker.pid}) has exited`);
    const frames = await inspector.capture().catch((error: unknown) => {
      if (worker.exited()) throw new ClusterdError('ERR_CLUSTERD_WORKER_GONE', `worker ${worker.id} (pid ${worker.pid}) exited while its stack was being taken`);
      throw error;
    });
    if (frames === null) {
      throw new ClusterdError('ERR_CLUSTERD_INSPECTOR', `worker ${worker.id}'s main thread did not reach JavaScript within ${CAPTURE_TIMEOUT_MS} ms (blocked inside a native call?)`);
    }
    return { state: frames.length === 0 ? 'idle' : this.blocked ? 'blocked' : 'busy', stack: frames };
  }

  /** A CPU profile of the worker's main thread over `durationMs`, through its inspector. */
  profile(durationMs: number, intervalUs?: number, signal?: AbortSignal): Promise<CpuProfile> {
    const worker = this.#worker;
    const inspector = worker.inspector();
    if (inspector === null || worker.exited()) return Promise.reject(new ClusterdError('ERR_CLUSTERD_WORKER_GONE', `worker ${worker.id} (pid ${worker.pid}) has exited`));
    // The inspector knows its pid, not the worker's id: the refusal is worded as `loop`'s is.
    return inspector.profile(durationMs, intervalUs, signal).catch((error: unknown) => {
      if (error instanceof ClusterdError && error.code === 'ERR_CLUSTERD_BUSY') throw new ClusterdError('ERR_CLUSTERD_BUSY', `refused: worker ${worker.id} is being profiled already; try again when it finishes`);
      throw error;
    });
  }

  /** Whether a CPU profile (profile()) or a loop measurement (measureLoop()) of it runs now: another is refused. */
  get measuring(): { profile: boolean; loop: boolean } {
    return { profile: this.#worker.inspector()?.profiling ?? false, loop: this.#worker.loops.measuring };
  }

  /** Whether its loop is blocked now: silent for a second, or past --watchdog when that is shorter. */
  get blocked(): boolean {
    return this.#worker.silentMs() > this.#blockedAfterMs;
  }

  /**
   * A second, or --watchdog when shorter. It was --watchdog itself (5 s by default): a loop blocked
   * for 4 s read as busy in `stack`, and `loop` waited for the block to end, then measured the quiet
   * after it and reported the worker idle.
   */
  get #blockedAfterMs(): number {
    return Math.min(this.#worker.watchdogMs || BLOCKED_FOR_STACK_MS, BLOCKED_FOR_STACK_MS);
  }

  /**
   * `clusterd loop`: where its loop spends the next `durationMs` (measured in the worker, by
   * src/loop/phases.ts). One at a time; waited for while its loop turns (LoopRequests), given up on
   * with ERR_CLUSTERD_TIMEOUT.
   */
  measureLoop(durationMs: number, signal?: AbortSignal): Promise<LoopBreakdown> {
    const worker = this.#worker;
    if (worker.exited()) return Promise.reject(new ClusterdError('ERR_CLUSTERD_WORKER_GONE', `worker ${worker.id} (pid ${worker.pid}) has exited`));
    return worker.loops.measure(durationMs, signal);
  }

  /** The worker's runtime says its app listens for SIGUSR1 (NODE_clusterd:usr1-taken). */
  usr1Taken(): void {
    const worker = this.#worker;
    // The app's SIGUSR1 handler would run on the master's signal: ask this worker over IPC instead
    // (asked: the message is queued; send()'s false on a connected channel only says the pipe is full).
    worker
      .inspector()
      ?.appTakesSigusr1(() => worker.send({ cmd: 'NODE_clusterd:open-inspector' }))
      ?.then(
        () =>
          worker.logs.eventOnce(
            'sigusr1-taken',
            `worker ${worker.id}'s app listens for SIGUSR1, the signal Node opens its inspector with: clusterd has the worker open its inspector itself and never sends it SIGUSR1 (stack, profile and blocked-loop reports work; the app's handler does not run for them)`,
            { worker: worker.id, pid: worker.pid },
            'info',
          ),
        () => {},
      );
  }
}
