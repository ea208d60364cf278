// `clusterd start -d`: what the daemon master and the process that started it share. The parent
// side (spawning, waiting) is in daemon-parent.ts, loaded only by `start -d`.
import type { ReadyInfo } from '../master/run.js';

/** Set in the daemon master's environment: it reports to its parent over IPC, then detaches. */
export const DAEMON_ENV = 'CLUSTERD_DAEMON_CHILD';

/** What the daemon master tells the process that started it. */
export type DaemonReport = { type: 'ready'; info: ReadyInfo } | { type: 'fatal'; message: string; lastOutput: string[]; exitCode: number };
