// A crash-looping worker id's wait, worded once for the master's refusals and the CLI's lines. No
// imports but types: the CLI takes it without pulling the master's modules in.
import type { BlockedSite } from './blocked-sites.js';

/** A worker id asked for that has no process now: it crashed, and waits out its restart backoff. */
export interface WaitingWorker {
  id: number;
  /** Its quick failures in a row (what the backoff doubles on). */
  crashes: number;
  /** Until its next try, in ms. */
  restartInMs: number;
  /** Where its loop was caught blocked over the last 5 minutes, worst first: no process row shows them now. */
  blockedSites: BlockedSite[];
}

/** `waiting to be restarted after 3 crashes in a row, next try in 2.4 s (...)`, as `status` and `stack` say it. */
export function waitingToRestart({ id, crashes, restartInMs }: Pick<WaitingWorker, 'id' | 'crashes' | 'restartInMs'>, cluster: string): string {
  const after = `${crashes} ${crashes === 1 ? 'crash' : 'crashes in a row'}`;
  return `waiting to be restarted after ${after}, next try in ${(restartInMs / 1000).toFixed(1)} s (\`clusterd restart ${cluster} ${id}\` starts it now)`;
}
