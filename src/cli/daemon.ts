// `clusterd start -d`: what the daemon master and the process that started it share. The parent
// side (spawning, waiting, and the report's type and parser) is in daemon-parent.ts, loaded only by
// `start -d`.

/** Set in the daemon master's environment: it reports to its parent over IPC, then detaches. */
export const DAEMON_ENV = 'CLUSTERD_DAEMON_CHILD';
