// What the master says when a stopping worker overstays --grace and is killed: one line naming what
// its drain still had open (the worker's last report, at most 100 ms old) and so was destroyed.
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
  const { open, appExits } = report;
  const destroyed = describeOpen(open);
  const handlers = open.handlers > 0 ? `${count(open.handlers, 'onShutdown handler', 'onShutdown handlers')} unfinished` : '';
  if (destroyed.length > 0) return `${head}, destroying ${destroyed.join(', ')}${handlers ? `; ${handlers}` : ''}`;
  if (handlers) return `${head} with ${handlers}`;
  if (appExits) return `${head}: nothing was open, but the app, which listens for ${killSignal}, had not exited`;
  return `${head} as its drain ended`;
}
