// What the master says when a stopping worker overstays --grace and is killed, or a forced stop kills
// it: one line naming what its drain still had open (the worker's last report, at most 100 ms old)
// and so was destroyed.
import { formatMs } from '../options.js';
import type { StillOpen } from '../protocol.js';
import { count, describeOpen } from '../still-open.js';

/** A stopping worker's last word on its drain (protocol `NODE_clusterd:draining`). */
export interface DrainReport {
  open: StillOpen;
  appExits: boolean;
}

/**
 * `worker 1 (pid 4121): --grace 10s over: killed (SIGKILL), destroying 2 WebSocket connections,
 * 1 HTTP/2 session`, or why nothing was open and it still had not exited.
 */
export function describeGraceOver({ id, pid, graceMs, report, killSignal }: { id: number; pid: number; graceMs: number; report: DrainReport | null; killSignal: NodeJS.Signals }): string {
  const head = `worker ${id} (pid ${pid}): --grace ${formatMs(graceMs)} over: killed (SIGKILL)`;
  if (report === null) return graceMs === 0 ? `${head} without draining` : `${head}; it never reported on its drain (its loop blocked?)`;
  return `${head}${whatWasLeft(report, killSignal)}`;
}

/**
 * A forced stop (a second stop signal) kills every worker at once: the same line as at --grace,
 * `worker 1 (pid 4121): stop forced: killed (SIGKILL), destroying 3 HTTP requests in flight`. A
 * worker not yet asked to drain (the master still handing it its queued connections) has not said
 * what it holds.
 */
export function describeForcedKill({ id, pid, report, draining, killSignal }: { id: number; pid: number; report: DrainReport | null; draining: boolean; killSignal: NodeJS.Signals }): string {
  const head = `worker ${id} (pid ${pid}): stop forced: killed (SIGKILL)`;
  if (report === null) return draining ? `${head} before it reported on its drain` : `${head} before it was asked to drain (what it had open is not known)`;
  return `${head}${whatWasLeft(report, killSignal)}`;
}

/** The end of a kill line: what the drain still had open and so was destroyed, or why it had not exited. */
function whatWasLeft({ open, appExits }: DrainReport, killSignal: NodeJS.Signals): string {
  const destroyed = describeOpen(open);
  const handlers = open.handlers > 0 ? `${count(open.handlers, 'onShutdown handler', 'onShutdown handlers')} unfinished` : '';
  if (destroyed.length > 0) return `, destroying ${destroyed.join(', ')}${handlers ? `; ${handlers}` : ''}`;
  if (handlers) return ` with ${handlers}`;
  if (appExits) return `: nothing was open, but the app, which listens for ${killSignal}, had not exited`;
  return ' as its drain ended';
}
