// What the supervisor does with a worker's blocked loop: --report-blocked's reports ('blocking':
// recorded in the blocked sites, the worker unharmed) and the watchdog's catches ('blocked': logged
// with the stack, the worker killed and its id restarted at once). The Supervisor owns one, has it
// follow each worker it forks, and asks it which exits restart without backoff.
import { formatStack } from '../loop/capture.js';
import type { BlockedSites } from './blocked-sites.js';
import type { BlockingReport } from './blocking-report.js';
import { writingOutput } from './exit-report.js';
import type { LogSink } from './logs.js';
import type { BlockedInfo } from './status.js';
import type { WorkerProcess } from './worker.js';

/** What BlockReports records in, and what it tells the supervisor. */
export interface BlockReportHost {
  readonly logs: LogSink;
  /** Where each worker id's loop was caught blocked. */
  readonly blockedSites: BlockedSites;
  /** --report-blocked caught a worker's loop blocked (the supervisor's 'blocking'). */
  blocking(worker: WorkerProcess, report: Pick<BlockingReport, 'frames' | 'blockedMs' | 'lasted'>): void;
  /** Something status shows changed (the supervisor's 'change'). */
  changed(): void;
}

/** A worker's blocked loops, as --report-blocked and the watchdog catch them. */
export class BlockReports {
  readonly #host: BlockReportHost;
  /** Workers the watchdog killed: their id restarts without backoff. */
  readonly #restartAtOnce = new WeakSet<WorkerProcess>();
  /** A block --report-blocked caught that has not ended yet, per worker (the watchdog may end it). */
  readonly #blocking = new WeakMap<WorkerProcess, { lasted(ms: number): void }>();

  constructor(host: BlockReportHost) {
    this.#host = host;
  }

  /** Follows a worker's 'blocked' (the watchdog) and 'blocking' (--report-blocked) events. */
  follow(worker: WorkerProcess): void {
    worker.on('blocked', (info: BlockedInfo) => this.#onBlocked(worker, info));
    worker.on('blocking', ({ frames, native = false, blockedMs, time, lasted }: BlockingReport) => {
      const block = this.#host.blockedSites.record(worker.id, frames, blockedMs, time, { native });
      // Until it ends, a watchdog report of this block is this block, not a second one.
      this.#blocking.set(worker, block);
      this.#host.blocking(worker, { frames, blockedMs, lasted });
      this.#host.changed();
      void lasted.then((ms) => {
        block.lasted(ms);
        if (this.#blocking.get(worker) === block) this.#blocking.delete(worker);
        this.#host.changed();
      });
    });
  }

  /** The watchdog killed it: its id restarts at once, without backoff. */
  restartAtOnce(worker: WorkerProcess): boolean {
    return this.#restartAtOnce.has(worker);
  }

  /**
   * The watchdog caught the worker's loop blocked past --watchdog: log where, keep it for
   * status (the 'change' lets the control plane read it while the process still exists), then
   * SIGKILL it (a blocked loop cannot drain) and restart its id at once, without backoff. Killing
   * first frees the core it spins on, so its replacement boots sooner; it served nothing anyway
   * (in rr, connections already go to the workers that acknowledge them).
   */
  #onBlocked(worker: WorkerProcess, info: BlockedInfo): void {
    // The block --report-blocked caught is the one the watchdog ends: counted once, with its length.
    // Either way the block ends here, with the worker: its length is settled now, or it would read
    // as still going on, growing with the clock, for as long as the sites keep it.
    const block = this.#blocking.get(worker) ?? this.#host.blockedSites.record(worker.id, info.stack, info.blockedMs, info.time);
    this.#blocking.delete(worker);
    block.lasted(info.blockedMs);
    // The whole stack as caught; a frame at its function's entry is said to be not the block's.
    const stack = info.entryFrame ? [info.entryFrame, ...info.stack] : info.stack;
    const frames = formatStack(stack);
    if (info.entryFrame) frames[0] += ' (caught at its entry: the block is its caller\'s)';
    this.#host.logs.event(
      'blocked',
      `worker ${worker.id} (pid ${worker.pid}) event loop blocked for ${info.blockedMs} ms${writingOutput(stack) ? ' writing its output (the master reads the workers\' output slower than it writes: it logs too much in one go)' : ''}; replacing it. Stack:\n${frames.join('\n') || `    (no JavaScript frames${info.error ? `: ${info.error}` : ''})`}`,
      { worker: worker.id, pid: worker.pid, blockedMs: info.blockedMs, stack, ...(info.error ? { error: info.error } : {}) },
      'warn',
    );
    this.#host.changed();
    this.#restartAtOnce.add(worker);
    worker.kill();
  }
}
