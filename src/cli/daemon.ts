// `clusterd start -d`: what the daemon master and the process that started it share. The parent
// side (spawning, waiting, and the report's type and parser) is in daemon-parent.ts, loaded only by
// `start -d`.

import { clip } from '../errors.js';

/** Set in the daemon master's environment: it reports to its parent over IPC, then detaches. */
export const DAEMON_ENV = 'CLUSTERD_DAEMON_CHILD';

/**
 * DAEMON_ENV's value for a master that start() (src/api/start.ts) runs: it reports the same way, but its
 * output stays on the stdout and stderr it was given (no default log file), and it keeps the IPC
 * channel open after ready: when that closes (the caller is gone, even by SIGKILL), it stops.
 */
export const API_CHILD = 'api';

/**
 * Set by start() to the config file it wrote for its master (every option, the env's secrets too):
 * the master removes it, and the directory start() made for it, once read, so that it outlives
 * neither a caller that exits (or is killed) before the cluster is ready nor the read itself.
 */
export const API_CONFIG_ENV = 'CLUSTERD_API_CONFIG';

/** The longest line a report carries (its message, each of the app's last lines); the parent refuses longer. */
export const MAX_REPORT_LINE = 10_000;

/** `text` within MAX_REPORT_LINE. */
export function reportLine(text: string): string {
  return clip(text, MAX_REPORT_LINE);
}
