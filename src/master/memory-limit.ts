// --max-memory: a worker whose RSS stays above the limit is replaced by a drained restart
// (its successor first), judged from the stats stream at every interval rather than a slow
// poll. Replacements run one at a time, so several bloated workers are never all recycled
// at once.
import { readFileSync } from 'node:fs';
import { formatBytes } from '../options.js';
import type { LogSink } from './logs.js';
import type { Supervisor } from './supervisor.js';
import type { ReplacePhase } from './want.js';
import type { WorkerProcess } from './worker.js';
import { isUp } from './worker-state.js';
import type { LoopSample } from '../loop/types.js';

/** Samples in a row above the limit before a worker counts as "staying" above it. */
export const SAMPLES_OVER_LIMIT = 2;

/**
 * After a replacement that failed (its successor did not boot: a broken deploy on disk), how long
 * before a worker still over the limit is tried again: not at every sample, which would fork a
 * failing successor every interval, nor never, which left it growing until the kernel killed it.
 */
export const RETRY_AFTER_FAILURE_MS = 30_000;

/** A process's resident set size in bytes, from Linux's /proc/PID/status (VmRSS); null where it cannot be read. */
export function processRss(pid: number, proc = '/proc'): number | null {
  try {
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`${proc}/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? null : Number(kib) * 1024;
  } catch {
    // Gone already, or no /proc (not Linux).
    return null;
  }
}

export function enforceMemoryLimit({
  supervisor,
  limitBytes,
  logs,
  now = Date.now,
  rssOf = processRss,
  leaving = () => false,
}: {
  supervisor: Pick<Supervisor, 'on' | 'off' | 'replace' | 'slot' | 'phase' | 'countMemoryReplacement'>;
  limitBytes: number;
  logs: Pick<LogSink, 'event'>;
  now?: () => number;
  /** A process's RSS now (bytes), or null: read when a worker gets ready. */
  rssOf?: (pid: number) => number | null;
  /** The cluster is going away (--shutdown-delay, a stop): it forks no replacement. */
  leaving?: () => boolean;
}): () => void {
  const over = new WeakMap<WorkerProcess, number>();
  /** When a worker whose replacement failed may be tried again. */
  const retryAt = new WeakMap<WorkerProcess, number>();
  /** Successors of a memory replacement. */
  const successors = new WeakSet<WorkerProcess>();
  /**
   * Each worker's RSS at start-up: read when it got ready, before traffic came to it, else (no /proc)
   * its first sample. Only this tells a worker that needs more than the limit to start from one that
   * grew past it: under load a leaking successor passes the limit before its first sample, and one
   * "never seen under the limit" was left running for good (612 MiB under --max-memory 200M).
   */
  const startRss = new WeakMap<WorkerProcess, number>();
  /** The worker ids whose successor was left running over the limit, said once each (a crash loop cannot flood). */
  const toldTooLow = new Set<number>();
  const queue: WorkerProcess[] = [];
  /** The worker being replaced now, one at a time. */
  let replacing: WorkerProcess | null = null;

  const next = (): void => {
    if (replacing) return;
    const worker = queue.shift();
    if (!worker) return;
    // A worker that exited, or was replaced meanwhile, needs nothing more. One a reload is replacing
    // joins that replacement (Supervisor.replace merges them).
    if (!isUp(worker.state) || supervisor.slot(worker.id)?.worker !== worker || supervisor.phase !== 'running' || leaving()) {
      next();
      return;
    }
    replacing = worker;
    // Known as a successor from its fork: it may pass the limit while the old worker still drains.
    const onProgress = (phase: ReplacePhase, successor: WorkerProcess): void => {
      if (phase === 'starting') successors.add(successor);
    };
    supervisor.replace(worker.id, { retire: worker, onProgress }).then(
      (successor) => {
        successors.add(successor);
        supervisor.countMemoryReplacement(worker.id);
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

  const onReady = (worker: WorkerProcess): void => {
    const rss = rssOf(worker.pid);
    if (rss !== null) startRss.set(worker, rss);
  };

  const onSample = (worker: WorkerProcess, sample: LoopSample): void => {
    if (!startRss.has(worker)) startRss.set(worker, sample.memory.rss);
    if (sample.memory.rss <= limitBytes) {
      over.delete(worker);
      return;
    }
    const count = (over.get(worker) ?? 0) + 1;
    over.set(worker, count);
    if (count < SAMPLES_OVER_LIMIT || queue.includes(worker) || replacing === worker || now() < (retryAt.get(worker) ?? 0)) return;
    // During --shutdown-delay the supervisor still runs: a replacement would be forked for a pod or
    // unit on its way out, as the operations refuse to.
    if (leaving()) return;
    // One already replaced, draining with its last samples: nothing more to do.
    if (supervisor.slot(worker.id)?.worker !== worker) return;
    // A successor over the limit from its start: a fresh worker needs more than the limit, and
    // replacing it again would only start the next one over it (--max-memory 16M: every 2 s, for good).
    const atStart = startRss.get(worker)!;
    if (successors.has(worker) && atStart > limitBytes) {
      if (toldTooLow.has(worker.id)) return;
      toldTooLow.add(worker.id);
      logs.event(
        'memory-limit-too-low',
        `worker ${worker.id} (pid ${worker.pid}) RSS ${formatBytes(sample.memory.rss)} is over --max-memory ${formatBytes(limitBytes)} from its start (${formatBytes(atStart)} at start-up, as a fresh replacement): a fresh worker needs more than the limit, so replacing it would not help; left running (raise --max-memory)`,
        { worker: worker.id, pid: worker.pid, rss: sample.memory.rss, startRss: atStart, limit: limitBytes },
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
  supervisor.on('worker-ready', onReady);
  supervisor.on('sample', onSample);
  return () => {
    supervisor.off('worker-ready', onReady);
    supervisor.off('sample', onSample);
  };
}
