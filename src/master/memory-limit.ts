// --max-memory: a worker whose RSS stays above the limit is replaced by a drained restart
// (its successor first), judged from the stats stream at every interval rather than a slow
// poll. Replacements run one at a time, so several bloated workers are never all recycled
// at once.
import { formatBytes } from '../options.js';
import type { LogSink } from './logs.js';
import type { Supervisor } from './supervisor.js';
import type { WorkerProcess } from './worker.js';
import type { LoopSample } from '../loop/types.js';

/** Samples in a row above the limit before a worker counts as "staying" above it. */
export const SAMPLES_OVER_LIMIT = 2;

/**
 * After a replacement that failed (its successor did not boot: a broken deploy on disk), how long
 * before a worker still over the limit is tried again: not at every sample, which would fork a
 * failing successor every interval, nor never, which left it growing until the kernel killed it.
 */
export const RETRY_AFTER_FAILURE_MS = 30_000;

export function enforceMemoryLimit({
  supervisor,
  limitBytes,
  logs,
  now = Date.now,
}: {
  supervisor: Pick<Supervisor, 'on' | 'off' | 'replace' | 'slot' | 'phase'>;
  limitBytes: number;
  logs: Pick<LogSink, 'event' | 'eventOnce'>;
  now?: () => number;
}): () => void {
  const over = new WeakMap<WorkerProcess, number>();
  /** When a worker whose replacement failed may be tried again. */
  const retryAt = new WeakMap<WorkerProcess, number>();
  /** Successors of a memory replacement, and the workers that have been under the limit once. */
  const successors = new WeakSet<WorkerProcess>();
  const seenUnder = new WeakSet<WorkerProcess>();
  const queue: WorkerProcess[] = [];
  /** The worker being replaced now, one at a time. */
  let replacing: WorkerProcess | null = null;

  const next = (): void => {
    if (replacing) return;
    const worker = queue.shift();
    if (!worker) return;
    // A worker that exited, or was replaced meanwhile, needs nothing more. One a reload is replacing
    // joins that replacement (Supervisor.replace merges them).
    if (worker.state !== 'ready' || supervisor.slot(worker.id)?.worker !== worker || supervisor.phase !== 'running') {
      next();
      return;
    }
    replacing = worker;
    supervisor.replace(worker.id, { retire: worker }).then(
      (successor) => {
        successors.add(successor);
        logs.event('memory-restarted', `worker ${worker.id}: replaced by pid ${successor.pid} (memory limit)`, { worker: worker.id, pid: successor.pid });
      },
      (error: unknown) => {
        retryAt.set(worker, now() + RETRY_AFTER_FAILURE_MS);
        logs.event(
          'memory-restart-failed',
          `worker ${worker.id}: memory restart failed: ${(error as Error).message}; tried again in ${RETRY_AFTER_FAILURE_MS / 1000} s if it stays over the limit`,
          { worker: worker.id, pid: worker.pid },
          'error',
        );
      },
    ).finally(() => {
      replacing = null;
      next();
    });
  };

  const onSample = (worker: WorkerProcess, sample: LoopSample): void => {
    if (sample.memory.rss <= limitBytes) {
      over.delete(worker);
      seenUnder.add(worker);
      return;
    }
    const count = (over.get(worker) ?? 0) + 1;
    over.set(worker, count);
    if (count < SAMPLES_OVER_LIMIT || queue.includes(worker) || replacing === worker || now() < (retryAt.get(worker) ?? 0)) return;
    // One already replaced, draining with its last samples: nothing more to do.
    if (supervisor.slot(worker.id)?.worker !== worker) return;
    // A successor over the limit from its start: a fresh worker needs more than the limit, and
    // replacing it again would only start the next one over it (--max-memory 16M: every 2 s, for good).
    if (successors.has(worker) && !seenUnder.has(worker)) {
      logs.eventOnce(
        'memory-limit-too-low',
        `worker ${worker.id} (pid ${worker.pid}) RSS ${formatBytes(sample.memory.rss)} is over --max-memory ${formatBytes(limitBytes)} from its start, as a fresh replacement: replacing it would not help, so workers over the limit from their start are left running (raise --max-memory)`,
        { worker: worker.id, pid: worker.pid, rss: sample.memory.rss, limit: limitBytes },
        'warn',
      );
      return;
    }
    logs.event(
      'memory-limit',
      `worker ${worker.id} (pid ${worker.pid}) RSS ${formatBytes(sample.memory.rss)} is over --max-memory ${formatBytes(limitBytes)}: replacing it`,
      { worker: worker.id, pid: worker.pid, rss: sample.memory.rss, limit: limitBytes },
      'warn',
    );
    queue.push(worker);
    next();
  };
  supervisor.on('sample', onSample);
  return () => supervisor.off('sample', onSample);
}
