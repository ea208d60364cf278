// What `stack`, `logs` and the blocked-loop notes under `status` print, as pure functions.
import type { StackFrame } from '../master/status.js';
import { NATIVE_CALL, appFrame } from '../master/blocked-sites.js';
import { waitingToRestart } from '../master/waiting.js';
import type { ClusterView, LogView, StackView } from '../control/types.js';
import { printable } from './format.js';
import { isBlocked, onePerId } from '../control/worker-rows.js';

/** `    at fn (file:///srv/app.js:27:5)`, as V8 prints a frame. */
export function frameLine(frame: StackFrame): string {
  const where = frame.url ? `${printable(frame.url)}:${frame.line}:${frame.column}` : '<unknown>';
  return `    at ${printable(frame.functionName) || '<anonymous>'} (${where})`;
}

/**
 * Where a blocked loop is, for a one-line note: `evilRegex (file:///srv/app.js:20:10)`, the app's
 * innermost frame, as the blocking sites name it (the innermost frame is often V8's or Node's:
 * `test (<unknown>)` for a regex, `promiseAfterHook` of node:internal/async_hooks under `loop`'s hooks);
 * a stack with no frame of the app's is named by its innermost frame, and says so. Null: no frames.
 * `runtimePrefixes`: where clusterd's frames are in the cluster's workers (ClusterView's).
 */
export function blockedWhere(frames: readonly StackFrame[], runtimePrefixes: readonly string[]): string | null {
  const app = appFrame(frames, runtimePrefixes);
  const frame = app ?? frames[0];
  if (!frame) return null;
  const named = frameLine(frame).slice('    at '.length);
  return app ? named : `${named}, no frame of the app's on the stack`;
}

/** `stack --json`: the worker, its state and its frames, innermost first. */
export interface StackJson {
  id: number;
  pid: number;
  state: StackView['state'];
  frames: StackFrame[];
}

/** `stack`: a line naming the worker and its state, then one line per frame. */
export function stackLines({ id, pid, state, frames }: StackJson): string[] {
  const head = `worker ${id} (pid ${pid}): ${state}`;
  if (frames.length > 0) return [head, ...frames.map(frameLine)];
  return [head, state === 'idle' ? '    (no JavaScript running: waiting in the event loop)' : '    (no frames: the thread was in native code)'];
}

/**
 * Under `status` and `top`: each ready worker whose loop is blocked now, for how long, and how to see
 * where (its row's figures are from its last sample, taken before the block).
 */
export function blockedNowLines({ name, workers }: Pick<ClusterView, 'name' | 'workers'>): string[] {
  return workers
    .filter(isBlocked)
    .map((worker) => `worker ${worker.id}: its event loop is blocked now, for ${(worker.blockedMs / 1000).toFixed(1)} s (\`clusterd stack ${printable(name)} ${worker.id}\` shows where)`);
}

/**
 * Under `status` and `top`: each worker id asked for that has no process now (it crashed, and waits
 * out its restart backoff), which the table, a row per process, cannot show.
 */
export function waitingLines({ name, waiting }: Pick<ClusterView, 'name' | 'waiting'>): string[] {
  return waiting.map((worker) => `worker ${worker.id}: no process, ${waitingToRestart(worker, printable(name))}`);
}

/** Under `status`: one line per worker id whose loop was caught blocked, naming where. */
export function blockedLines({ workers, runtimePrefixes }: Pick<ClusterView, 'workers' | 'runtimePrefixes'>): string[] {
  // The report is the id's: an id with two processes (a restart under way) has it on both rows.
  return onePerId(workers).flatMap((worker) => {
    const report = worker.lastBlocked;
    if (!report) return [];
    const when = new Date(report.time).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    const at = blockedWhere(report.frames, runtimePrefixes);
    const where = at ? `, in ${at}` : '';
    return [`worker ${worker.id}: loop blocked ${Math.round(report.blockedMs)} ms at ${when}${where}`];
  });
}

/**
 * Under `status` and `top`: the worst place each worker id's loop was caught blocked over the window,
 * `worker 1: 3 blocks, longest 212 ms, in parseBig (file:///srv/app/report.js:41)` (blocks that lasted
 * at least --report-blocked: no other kind is counted). The sites are the id's, not a process's: one
 * line per id, whether it has two processes now (a restart under way) or none (it waits to be restarted).
 */
export function blockedSiteLines({ workers, waiting }: Pick<ClusterView, 'workers' | 'waiting'>): string[] {
  return [...onePerId(workers), ...waiting]
    .sort((a, b) => a.id - b.id)
    .flatMap(({ id, blockedSites }) => {
      const worst = blockedSites[0];
      if (!worst) return [];
      const count = blockedSites.reduce((sum, site) => sum + site.count, 0);
      const blocks = `${count} block${count === 1 ? '' : 's'}`;
      const place = `${printable(worst.url)}:${worst.line}`;
      const where = worst.function === NATIVE_CALL ? `in a native call that returned to ${place}` : `in ${printable(worst.function) || '<anonymous>'} (${place})`;
      return [`worker ${id}: ${blocks}, longest ${Math.round(worst.maxMs)} ms, ${where}`];
    });
}

/** `logs`: `[w2] line`, and the master's own notes (worker 0) as they are. */
export function logLine(entry: LogView): string {
  return entry.worker === 0 ? entry.message : `[w${entry.worker}] ${entry.message}`;
}
